"""THE preprocessing (neometer/data/preprocess.py): letterbox geometry, area resize, input
decoding (EXIF, grayscale, alpha, 16-bit) and normalisation values."""

import numpy as np
import pytest
from PIL import Image

from neometer.data.preprocess import (IMAGENET_MEAN, IMAGENET_STD, PreprocessSpec, apply_mask, letterbox,
                                      letterbox_geometry, letterbox_mask, normalize, preprocess, preprocess_u8,
                                      read_image, read_mask, resize_area, spec_fingerprint)
from neometer.errors import NeometerError

cv2 = pytest.importorskip("cv2")
SPEC = PreprocessSpec()


# --- geometry ---------------------------------------------------------------------------

@pytest.mark.parametrize("w,h,new_w,new_h,off_x,off_y", [
    (640, 480, 224, 168, 0, 28),    # landscape: width is the long side
    (480, 640, 168, 224, 28, 0),    # portrait
    (300, 300, 224, 224, 0, 0),     # square
    (50, 20, 224, 90, 0, 67),       # small image is scaled UP (20 * 224/50 = 89.6 -> 90)
    (1920, 1080, 224, 126, 0, 49),  # phone video frame
    (1000, 1, 224, 1, 0, 111),      # degenerate strip keeps one row
])
def test_letterbox_geometry(w, h, new_w, new_h, off_x, off_y):
    geo = letterbox_geometry(w, h, 224)
    assert (geo.new_w, geo.new_h, geo.off_x, geo.off_y) == (new_w, new_h, off_x, off_y)


@pytest.mark.parametrize("w,h", [(640, 480), (480, 640), (50, 20), (20, 50)])
def test_letterbox_places_content_and_pads_with_zeros(w, h):
    img = np.full((h, w, 3), (200, 100, 50), np.uint8)
    out, geo = letterbox(img, SPEC)
    assert out.shape == (224, 224, 3) and out.dtype == np.uint8
    x0, y0, x1, y1 = geo.content_box
    inside = np.zeros((224, 224), bool)
    inside[y0:y1, x0:x1] = True
    assert (out[inside] == (200, 100, 50)).all()  # area resize of a constant is that constant
    assert (out[~inside] == 0).all()  # the short side is padded with zeros
    assert inside.sum() < 224 * 224  # (non-square inputs have padding at all)


def test_upscaling_a_two_pixel_image_keeps_hard_edges():
    img = np.array([[[10, 20, 30], [250, 240, 230]]], np.uint8)  # 2x1: footprints never straddle 1.0
    out, geo = letterbox(img, SPEC)
    assert (geo.new_w, geo.new_h, geo.off_y) == (224, 112, 56)
    content = out[56:168]
    assert (content[:, :112] == (10, 20, 30)).all() and (content[:, 112:] == (250, 240, 230)).all()


def test_upscaling_blends_only_where_a_footprint_straddles_two_pixels():
    img = np.array([[0, 255, 0]], np.uint8)  # 3 -> 224: output footprints are 3/224 wide
    out = resize_area(img, 224, 1)[0]
    edges = np.arange(225) * 3 / 224
    straddles = np.floor(edges[:-1]) != np.ceil(edges[1:]) - 1
    middle = (edges[:-1] >= 1) & (edges[1:] <= 2)
    assert (out[middle] == 255).all() and (out[(edges[1:] <= 1) | (edges[:-1] >= 2)] == 0).all()
    assert ((out[straddles] > 0) & (out[straddles] < 255)).all()


@pytest.mark.parametrize("shape", [(336, 448), (375, 500), (480, 640), (1080, 1920), (300, 97)])
def test_area_downscale_agrees_with_opencv_inter_area(shape):
    rng = np.random.default_rng(shape[0])
    img = cv2.GaussianBlur(rng.integers(0, 256, shape + (3,), dtype=np.uint8), (0, 0), 2)
    geo = letterbox_geometry(shape[1], shape[0], 224)
    ours = resize_area(img, geo.new_w, geo.new_h)
    theirs = cv2.resize(img, (geo.new_w, geo.new_h), interpolation=cv2.INTER_AREA)
    assert np.abs(ours.astype(int) - theirs).max() <= 1  # the only difference: rounding between passes


# --- normalisation ----------------------------------------------------------------------

def test_normalize_values_and_layout():
    u8 = np.zeros((2, 4, 4, 3), np.uint8)
    u8[..., 0], u8[..., 1], u8[..., 2] = 255, 0, 128
    x = normalize(u8, SPEC)
    assert x.shape == (2, 3, 4, 4) and x.dtype == np.float32
    expected = [(1.0 - IMAGENET_MEAN[0]) / IMAGENET_STD[0], (0.0 - IMAGENET_MEAN[1]) / IMAGENET_STD[1],
                (128 / 255 - IMAGENET_MEAN[2]) / IMAGENET_STD[2]]
    for c in range(3):
        np.testing.assert_allclose(x[:, c], expected[c], rtol=1e-6)
    np.testing.assert_allclose(normalize(np.zeros((1, 1, 3), np.uint8))[:, 0, 0],
                               -np.asarray(IMAGENET_MEAN) / np.asarray(IMAGENET_STD), rtol=1e-6)


def test_preprocess_masks_after_letterbox_and_normalizes():
    img = np.full((100, 200, 3), 180, np.uint8)
    mask = np.zeros((100, 200), np.uint8)
    mask[:, :100] = 255  # left half is the infant
    u8 = preprocess_u8(img, mask, SPEC)
    assert (u8[56:168, :112] == 180).all()  # body kept
    assert (u8[:, 112:] == 0).all()  # background removed
    assert (u8[:56] == 0).all() and (u8[168:] == 0).all()  # padding
    np.testing.assert_array_equal(preprocess(img, mask, SPEC), normalize(u8, SPEC))
    # bool and 0/1 masks mean the same as 0/255 masks
    np.testing.assert_array_equal(preprocess_u8(img, mask > 0, SPEC), u8)
    np.testing.assert_array_equal(letterbox_mask(mask // 255, SPEC), letterbox_mask(mask, SPEC))


def test_letterbox_mask_coverage_and_threshold():
    mask = np.ones((60, 120), np.float32)
    m224 = letterbox_mask(mask, SPEC)
    geo = letterbox_geometry(120, 60, 224)
    x0, y0, x1, y1 = geo.content_box
    assert np.allclose(m224[y0:y1, x0:x1], 1.0) and m224.sum() == pytest.approx((x1 - x0) * (y1 - y0), rel=1e-5)
    img = np.full((224, 224, 3), 99, np.uint8)
    half = np.full((224, 224), 0.5, np.float32)
    assert (apply_mask(img, half, SPEC) == 99).all()  # >= threshold keeps
    assert (apply_mask(img, half - 1e-3, SPEC) == 0).all()


# --- decoding ---------------------------------------------------------------------------

def test_exif_rotated_jpeg_is_upright(tmp_path):
    stored = np.zeros((40, 60, 3), np.uint8)  # as the sensor stored it: 60 wide, 40 high
    stored[:20, :30] = (255, 0, 0)  # red block at the stored top-left
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    path = tmp_path / "phone.jpg"
    Image.fromarray(stored).save(path, quality=95, exif=exif.tobytes())
    img = read_image(path)
    assert img.shape == (60, 40, 3)  # displayed portrait
    assert img[5:15, 25:35, 0].mean() > 200 and img[5:15, 25:35, 1].mean() < 60  # top-left went top-right
    assert img[45:55, 5:15].mean() < 40
    out, geo = letterbox(img, SPEC)
    assert (geo.new_w, geo.new_h) == (149, 224)


def test_grayscale_png_becomes_three_equal_channels(tmp_path):
    gray = np.arange(0, 240, dtype=np.uint8).reshape(12, 20)
    Image.fromarray(gray, mode="L").save(tmp_path / "g.png")
    img = read_image(tmp_path / "g.png")
    assert img.shape == (12, 20, 3) and img.dtype == np.uint8
    for c in range(3):
        np.testing.assert_array_equal(img[..., c], gray)


def test_rgba_png_composites_onto_black(tmp_path):
    rgba = np.zeros((4, 3, 4), np.uint8)
    rgba[..., :3] = (200, 100, 50)
    rgba[0, :, 3], rgba[1, :, 3], rgba[2:, :, 3] = 0, 128, 255
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "a.png")
    img = read_image(tmp_path / "a.png")
    assert img.shape == (4, 3, 3)
    assert (img[0] == 0).all()  # transparent = background
    np.testing.assert_array_equal(img[1, 0], np.floor(np.array([200, 100, 50]) * 128 / 255 + 0.5))
    assert (img[2:] == (200, 100, 50)).all()


def test_16bit_rgb_png_scales_instead_of_truncating(tmp_path):
    rgb16 = np.zeros((2, 3, 3), np.uint16)
    rgb16[0, 0] = (65535, 0, 0)  # pure red
    rgb16[0, 1] = (257 * 100, 257 * 200, 257 * 3)
    rgb16[0, 2] = (255, 255, 255)  # 255/65535 -> 1 grey level; the high byte would be 0
    rgb16[1] = (32896, 32896, 32896)  # exactly 128.0
    cv2.imwrite(str(tmp_path / "d.png"), rgb16[..., ::-1])  # OpenCV writes BGR
    img = read_image(tmp_path / "d.png")
    assert img.dtype == np.uint8
    np.testing.assert_array_equal(img[0, 0], (255, 0, 0))
    np.testing.assert_array_equal(img[0, 1], (100, 200, 3))
    np.testing.assert_array_equal(img[0, 2], (1, 1, 1))
    assert (img[1] == 128).all()


def test_16bit_grayscale_png(tmp_path):
    gray16 = (np.arange(6, dtype=np.uint16).reshape(2, 3) * 13107)  # 0, 51, 102, ... 255 in 8 bit
    cv2.imwrite(str(tmp_path / "g16.png"), gray16)
    img = read_image(tmp_path / "g16.png")
    assert img.shape == (2, 3, 3)
    np.testing.assert_array_equal(img[..., 1], (np.arange(6) * 51).reshape(2, 3))


def test_unreadable_image_is_a_user_error(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\nnot really a png")
    with pytest.raises(NeometerError, match="bad.png"):
        read_image(bad)
    with pytest.raises(NeometerError, match="missing.jpg"):
        read_image(tmp_path / "missing.jpg")


def test_read_mask_scales_to_unit_range(tmp_path):
    m = np.zeros((5, 7), np.uint8)
    m[1:4, 2:5] = 255
    Image.fromarray(m).save(tmp_path / "m.png")
    mask = read_mask(tmp_path / "m.png")
    assert mask.dtype == np.float32 and mask.max() == 1.0 and mask.sum() == 9


def test_spec_round_trip_and_fingerprint():
    spec = PreprocessSpec(target_size=96)
    assert PreprocessSpec.from_dict(spec.to_dict()) == spec
    assert spec_fingerprint(spec) != spec_fingerprint(SPEC)
    assert spec_fingerprint(PreprocessSpec.from_dict(SPEC.to_dict())) == spec_fingerprint(SPEC)


def test_mask_follows_the_exif_orientation_of_its_photo(tmp_path):
    stored = np.zeros((40, 60), np.uint8)
    stored[:20, :30] = 255
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(stored).save(tmp_path / "m.jpg", quality=95, exif=exif.tobytes())
    Image.fromarray(np.zeros((40, 60, 3), np.uint8)).save(tmp_path / "p.jpg", exif=exif.tobytes())
    mask = read_mask(tmp_path / "m.jpg")
    assert mask.shape == read_image(tmp_path / "p.jpg").shape[:2] == (60, 40)
    assert mask[5:15, 25:35].mean() > 0.9 and mask[45:55, 5:15].mean() < 0.1
