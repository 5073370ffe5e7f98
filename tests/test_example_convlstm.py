"""The ConvLSTM example's data: moving digits are seeded, binary, keep their ink, and move one pixel per frame."""
import numpy as np

from gradcore.examples.convlstm import glyph, moving_digits


def test_moving_digits_are_seeded_binary_and_keep_their_ink():
    a = moving_digits(8, 6, 24, seed=3)
    assert a.shape == (8, 6, 1, 24, 24) and a.dtype == np.float32
    np.testing.assert_array_equal(a, moving_digits(8, 6, 24, seed=3))
    assert not np.array_equal(a, moving_digits(8, 6, 24, seed=4))
    assert set(np.unique(a)) <= {0.0, 1.0}
    ink = a.sum(axis=(2, 3, 4))
    np.testing.assert_array_equal(ink, ink[:, :1].repeat(6, axis=1))  # the whole glyph stays in the frame


def test_each_frame_is_the_previous_one_moved_by_at_most_one_pixel_per_axis():
    seq = moving_digits(16, 8, 24, seed=5)[:, :, 0]
    for frames in seq:
        for prev, cur in zip(frames[:-1], frames[1:]):
            assert any(np.array_equal(np.roll(np.roll(prev, dy, 0), dx, 1), cur)
                       for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx)


def test_glyphs_are_distinct_digits():
    shapes = {glyph(d).shape for d in range(10)}
    assert shapes == {(14, 10)}
    flat = [glyph(d).tobytes() for d in range(10)]
    assert len(set(flat)) == 10
