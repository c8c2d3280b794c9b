"""G.711 tables against SpanDSP's own codec, and round-trip properties."""

from __future__ import annotations

import ctypes

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from faxline.fax import _spandsp
from faxline.fax.g711 import Codec, decode, encode, transcoder

ALL_SAMPLES = np.arange(-32768, 32768, dtype=np.int16)
MODES = {Codec.PCMU: _spandsp.G711_ULAW, Codec.PCMA: _spandsp.G711_ALAW}


def spandsp_encode(samples: npt.NDArray[np.int16], codec: Codec) -> bytes:
    lib = _spandsp.lib()
    state = lib.g711_init(None, MODES[codec])
    try:
        out = (ctypes.c_uint8 * len(samples))()
        lib.g711_encode(
            state, out, samples.ctypes.data_as(ctypes.POINTER(ctypes.c_int16)), len(samples)
        )
        return bytes(out)
    finally:
        lib.g711_free(state)


def spandsp_decode(data: bytes, codec: Codec) -> npt.NDArray[np.int16]:
    lib = _spandsp.lib()
    state = lib.g711_init(None, MODES[codec])
    try:
        out = np.zeros(len(data), dtype=np.int16)
        codes = (ctypes.c_uint8 * len(data)).from_buffer_copy(data)
        lib.g711_decode(state, out.ctypes.data_as(ctypes.POINTER(ctypes.c_int16)), codes, len(data))
        return out
    finally:
        lib.g711_free(state)


@pytest.mark.parametrize("codec", list(Codec))
def test_encoding_matches_spandsp_for_every_sample(codec: Codec) -> None:
    assert encode(ALL_SAMPLES, codec) == spandsp_encode(ALL_SAMPLES, codec)


@pytest.mark.parametrize("codec", list(Codec))
def test_decoding_matches_spandsp_for_every_code(codec: Codec) -> None:
    codes = bytes(range(256))
    assert np.array_equal(decode(codes, codec), spandsp_decode(codes, codec))


@pytest.mark.parametrize("codec", list(Codec))
def test_one_byte_per_sample(codec: Codec) -> None:
    block = np.zeros(160, dtype=np.int16)
    assert len(encode(block, codec)) == 160
    assert decode(encode(block, codec), codec).dtype == np.int16


@given(
    samples=hnp.arrays(np.int16, st.integers(0, 400)),
    codec=st.sampled_from(list(Codec)),
)
def test_decoded_audio_encodes_to_the_same_audio(
    samples: npt.NDArray[np.int16], codec: Codec
) -> None:
    # Not always the same bytes: mu-law has a +0 (0xff) and a -0 (0x7f) that both decode
    # to 0, and 0 encodes as +0 (hypothesis found -1 -> 0x7f -> 0 -> 0xff).
    audio = decode(encode(samples, codec), codec)
    assert np.array_equal(decode(encode(audio, codec), codec), audio)


@given(samples=hnp.arrays(np.int16, st.integers(1, 400)), codec=st.sampled_from(list(Codec)))
def test_quantisation_error_is_bounded(samples: npt.NDArray[np.int16], codec: Codec) -> None:
    restored = decode(encode(samples, codec), codec).astype(np.int32)
    original = samples.astype(np.int32)
    # G.711 keeps 4 mantissa bits: the error stays within 1/16 of the magnitude (+ the
    # smallest step near zero and mu-law's clipping above 32635).
    bound = np.abs(original) // 16 + 140
    assert np.all(np.abs(restored - original) <= bound)


@given(samples=hnp.arrays(np.int16, st.integers(0, 400)), codec=st.sampled_from(list(Codec)))
def test_transcoder_is_encode_then_decode(samples: npt.NDArray[np.int16], codec: Codec) -> None:
    assert np.array_equal(transcoder(codec)(samples), decode(encode(samples, codec), codec))


def test_mu_law_negative_zero_decodes_to_zero() -> None:
    assert encode(np.array([-1], dtype=np.int16), Codec.PCMU) == b"\x7f"
    assert decode(b"\x7f\xff", Codec.PCMU).tolist() == [0, 0]
