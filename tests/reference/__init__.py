"""Independent numpy implementations of each op's forward (and, where useful, backward), written from the
maths, never from gradcore's code. One module per op family."""
