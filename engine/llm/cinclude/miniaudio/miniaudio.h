/*
 * Stand-in for miniaudio.h (https://miniaud.io), which Go module zips do not
 * carry (they drop vendor/ directories) and Debian does not package.
 *
 * Only llama.cpp's multimodal helper (tools/mtmd/mtmd-helper.cpp) includes it,
 * to decode audio prompts. evomerge never feeds audio to a model, so every
 * decoder entry point here fails cleanly: an audio prompt would be rejected by
 * mtmd_helper_bitmap_init_from_buf instead of being decoded.
 *
 * The Makefile copies this directory to a fixed path and passes it through
 * CGO_CPPFLAGS; see the Makefile's "cgo" section for why the path is fixed.
 */
#ifndef EVOMERGE_MINIAUDIO_STUB_H
#define EVOMERGE_MINIAUDIO_STUB_H

#include <stddef.h>
#include <stdint.h>

#ifndef MA_API
#define MA_API
#endif

typedef int ma_result;
typedef uint64_t ma_uint64;
typedef uint32_t ma_uint32;

#define MA_SUCCESS 0
#define MA_NOT_IMPLEMENTED -29

typedef enum { ma_format_unknown = 0, ma_format_f32 = 5 } ma_format;

typedef struct {
    ma_format format;
    ma_uint32 channels;
    ma_uint32 sampleRate;
} ma_decoder_config;

typedef struct {
    int unused;
} ma_decoder;

static inline ma_decoder_config ma_decoder_config_init(ma_format format, ma_uint32 channels, ma_uint32 sampleRate) {
    ma_decoder_config c;
    c.format = format;
    c.channels = channels;
    c.sampleRate = sampleRate;
    return c;
}

static inline ma_result ma_decoder_init_memory(const void *data, size_t size, const ma_decoder_config *config, ma_decoder *decoder) {
    (void)data; (void)size; (void)config; (void)decoder;
    return MA_NOT_IMPLEMENTED;
}

static inline ma_result ma_decoder_get_length_in_pcm_frames(ma_decoder *decoder, ma_uint64 *length) {
    (void)decoder;
    if (length) *length = 0;
    return MA_NOT_IMPLEMENTED;
}

static inline ma_result ma_decoder_read_pcm_frames(ma_decoder *decoder, void *frames, ma_uint64 count, ma_uint64 *read) {
    (void)decoder; (void)frames; (void)count;
    if (read) *read = 0;
    return MA_NOT_IMPLEMENTED;
}

static inline ma_result ma_decoder_uninit(ma_decoder *decoder) {
    (void)decoder;
    return MA_SUCCESS;
}

#endif
