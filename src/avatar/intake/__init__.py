"""Photo intake: upload slots, the user's photo set, deletion, and the verdict of every uploaded photo."""
