"""Examples on the page: real reviews from the IMDB data set, and one-line sentences."""

REAL_REVIEWS = [
    "In this 4th Child's Play film, Chucky gets lucky. It's very funny and there are some enjoyable parts. "
    "Very good direction. Not as bad as it could be. The best one in the series since the first. "
    "Three stars out of four.",
    "This movie is so bad, I knew how it ends right after this little girl killed the first person. "
    "Very bad acting very bad plot very bad movie<br /><br />do yourself a favour and DON'T watch it 1/10",
    "The stuff dreams are made of. A complete retelling of the play as a dream of vengeance: will baffle "
    "purists, but will delight the open-minded. A superb effort: great cinematography, acting, and script.",
    "I can't believe this movie has an average rating of 7.0! It is a fiendishly bad movie, and I saw it "
    "when it was fairly new, and I was in the age group that is supposed to like it!",
]

ONE_LINERS = [
    "A masterpiece: moving, funny and beautifully acted.",
    "Two hours of my life I will never get back.",
    "I expected to hate it, but I loved every minute.",
    "Not bad at all.",
]

EXAMPLES = REAL_REVIEWS + ONE_LINERS
