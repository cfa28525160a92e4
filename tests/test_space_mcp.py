"""The Space as an MCP server: the `mcp` client connects over streamable HTTP, lists the tools and calls one."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from gradio_client import Client
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.types import CallToolResult, Tool


REVIEW = "A moving, beautifully acted film."


async def tools_and_calls(url: str, calls: list[tuple[str, dict]]) -> tuple[list[Tool], list[CallToolResult]]:
    """Connect as an MCP client does (the URL the README gives), list the tools and make `calls`."""
    async with streamable_http_client(f"{url}/gradio_api/mcp/") as (read, write, _):
        async with ClientSession(read, write) as session:
            await session.initialize()
            tools = (await session.list_tools()).tools
            return tools, [await session.call_tool(name, arguments) for name, arguments in calls]


def test_probability_tool_answers_like_the_api(app_url: str, tiny_model: Path) -> None:
    tools, (scored, empty) = asyncio.run(
        tools_and_calls(app_url, [("probability", {"review": REVIEW}), ("probability", {"review": ""})]))
    for tool in tools:
        print(f"{tool.name}: {tool.description}")
    described = {tool.name: tool for tool in tools}
    assert {"predict", "probability", "score_csv"} <= set(described)
    # Written for a user: what goes in, what comes out, the limits (the window comes from the model folder).
    window = json.loads((tiny_model / "tokenizer.json").read_text())["sequence_length"]
    probability = described["probability"]
    assert "from 0" in probability.description and "null for an empty text" in probability.description
    assert f"first {window} words" in probability.description
    assert "movie review" in probability.inputSchema["properties"]["review"]["description"]

    api = Client(app_url, verbose=False)
    assert not scored.isError and not empty.isError
    value = float(scored.content[0].text)
    assert 0 <= value <= 1 and value == pytest.approx(api.predict(REVIEW, api_name="/probability"), abs=1e-6)
    expected = api.predict("", api_name="/probability")
    assert expected is None and empty.content[0].text == str(expected)
