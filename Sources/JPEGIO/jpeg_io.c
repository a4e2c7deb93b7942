// The only place that calls libjpeg. libjpeg reports errors through error_exit, which must not return: it longjmps
// back here, and every call that may fail runs under setjmp and comes back to Swift as a status code and a message.
// Warnings that mean lost pixels take the same way out (see jpeg_io.h for which).
#include "jpeg_io.h"

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h>

typedef struct {
    struct jpeg_error_mgr pub;  // first, so that a j_common_ptr's err is a pointer to this struct
    jmp_buf jump;
    char *message;
    size_t message_size;
    size_t input_size;
} error_state;

static void copy_message(char *message, size_t message_size, const char *text) {
    if (message == NULL || message_size == 0) return;
    snprintf(message, message_size, "%s", text);
}

// libjpeg's text for the pending message code, with our wording for the ones users meet most.
static void record(j_common_ptr cinfo) {
    error_state *state = (error_state *)cinfo->err;
    int code = cinfo->err->msg_code;
    char text[JMSG_LENGTH_MAX];
    if (code == JWRN_JPEG_EOF || code == JERR_INPUT_EOF) {
        snprintf(text, sizeof(text), "file is truncated (premature end of JPEG data after %zu bytes)",
                 state->input_size);
    } else {
        (*cinfo->err->format_message)(cinfo, text);
    }
    copy_message(state->message, state->message_size, text);
}

static void on_error_exit(j_common_ptr cinfo) {
    record(cinfo);
    longjmp(((error_state *)cinfo->err)->jump, 1);
}

// Warnings come with msg_level -1; trace messages (0 and up) are ignored.
static void on_emit_message(j_common_ptr cinfo, int msg_level) {
    if (msg_level >= 0) return;
    int code = cinfo->err->msg_code;
    int before_first_scan = ((j_decompress_ptr)cinfo)->input_scan_number == 0;
    // Metadata only: libjpeg's guess for an unknown Adobe transform (the guess Pillow gets too), an unknown JFIF
    // revision, junk between the header segments before any entropy-coded data.
    if (code == JWRN_ADOBE_XFORM || code == JWRN_JFIF_MAJOR || (code == JWRN_EXTRANEOUS_DATA && before_first_scan)) {
        cinfo->err->num_warnings++;
        return;
    }
    // Everything else concerns the pixels: premature end of data, a marker inside entropy-coded data, bad Huffman or
    // arithmetic codes, missing restart markers, an inconsistent progression, and junk after a scan's data (the
    // entropy decoder finished before the data did: corrupt, and often libjpeg's only sign of it).
    on_error_exit(cinfo);
}

static void on_output_message(j_common_ptr cinfo) { (void)cinfo; }

static void on_progress(j_common_ptr cinfo) {
    j_decompress_ptr dinfo = (j_decompress_ptr)cinfo;
    if (dinfo->input_scan_number > JPEGIO_MAX_SCANS) {
        error_state *state = (error_state *)cinfo->err;
        char text[64];
        snprintf(text, sizeof(text), "too many scans (more than %d)", JPEGIO_MAX_SCANS);
        copy_message(state->message, state->message_size, text);
        longjmp(state->jump, 1);
    }
}

static void fill_info(j_decompress_ptr cinfo, jpegio_info *info) {
    info->width = cinfo->image_width;
    info->height = cinfo->image_height;
    info->components = cinfo->num_components;
    info->color_space = (int)cinfo->jpeg_color_space;
    info->progressive = cinfo->progressive_mode ? 1 : 0;
    info->arithmetic = cinfo->arith_code ? 1 : 0;
    info->restart_interval = (int)cinfo->restart_interval;
    info->adobe_transform = cinfo->saw_Adobe_marker ? cinfo->Adobe_transform : -1;
    for (int i = 0; i < 4; i++) {
        int present = cinfo->comp_info != NULL && i < cinfo->num_components;
        info->h_samp[i] = present ? cinfo->comp_info[i].h_samp_factor : 0;
        info->v_samp[i] = present ? cinfo->comp_info[i].v_samp_factor : 0;
    }
}

// Pillow's ImagingConvert "CMYK" -> "RGB" (cmyk2rgb) on Pillow's CMYK values, which are the stored samples inverted.
static inline uint8_t cmyk_channel(uint8_t stored_c, uint8_t stored_k) {
    unsigned c = 255u - stored_c, nk = stored_k;  // nk = 255 - K, and K = 255 - stored_k
    unsigned t = c * nk + 128u;
    unsigned scaled = ((t >> 8) + t) >> 8;  // MULDIV255(c, nk)
    return (uint8_t)(nk - scaled);          // scaled <= nk: no clipping needed
}

int jpegio_decode(const uint8_t *data, size_t size, uint64_t max_pixels, jpegio_info *info, uint8_t **pixels_out,
                  char *message, size_t message_size) {
    *pixels_out = NULL;
    memset(info, 0, sizeof(*info));
    info->adobe_transform = -1;
    copy_message(message, message_size, "");
    if (size == 0) {
        copy_message(message, message_size, "file is empty");
        return JPEGIO_ERROR;
    }
    if ((size_t)(unsigned long)size != size) {
        copy_message(message, message_size, "file is too large");
        return JPEGIO_ERROR;
    }
    struct jpeg_decompress_struct cinfo;
    error_state state;
    memset(&cinfo, 0, sizeof(cinfo));
    memset(&state, 0, sizeof(state));
    cinfo.err = jpeg_std_error(&state.pub);
    state.pub.error_exit = on_error_exit;
    state.pub.emit_message = on_emit_message;
    state.pub.output_message = on_output_message;
    state.message = message;
    state.message_size = message_size;
    state.input_size = size;
    struct jpeg_progress_mgr progress;
    memset(&progress, 0, sizeof(progress));
    progress.progress_monitor = on_progress;
    // Written after setjmp, read after longjmp: must be volatile.
    uint8_t *volatile pixels = NULL;
    uint8_t *volatile row = NULL;
    if (setjmp(state.jump)) {
        fill_info(&cinfo, info);
        free(pixels);
        free(row);
        jpeg_destroy_decompress(&cinfo);
        if (message != NULL && message_size > 0 && message[0] == '\0') copy_message(message, message_size, "unknown error");
        return JPEGIO_ERROR;
    }
    jpeg_create_decompress(&cinfo);
    cinfo.progress = &progress;
    jpeg_mem_src(&cinfo, data, (unsigned long)size);
    // As Pillow: tables-only datastreams before the image are read and kept.
    while (jpeg_read_header(&cinfo, FALSE) == JPEG_HEADER_TABLES_ONLY) {
        if (cinfo.src->bytes_in_buffer == 0) {
            copy_message(message, message_size, "JPEG datastream contains no image");
            longjmp(state.jump, 1);
        }
    }
    fill_info(&cinfo, info);
    uint64_t count = (uint64_t)cinfo.image_width * (uint64_t)cinfo.image_height;
    // The limit, and what the buffers below could hold (4 bytes a pixel) without size_t overflow.
    if (count > max_pixels || count > SIZE_MAX / 8) {
        jpeg_destroy_decompress(&cinfo);
        return JPEGIO_TOO_MANY_PIXELS;
    }
    int components = cinfo.num_components;
    switch (components) {
    case 1: cinfo.out_color_space = JCS_GRAYSCALE; break;
    case 3: cinfo.out_color_space = JCS_RGB; break;  // from YCbCr, or RGB stored as is
    case 4: cinfo.out_color_space = JCS_CMYK; break; // from CMYK, or YCCK converted by libjpeg
    default: {
        char text[64];
        snprintf(text, sizeof(text), "unsupported number of colour components: %d", components);
        copy_message(message, message_size, text);
        longjmp(state.jump, 1);
    }
    }
    if (cinfo.jpeg_color_space == JCS_UNKNOWN) {
        copy_message(message, message_size, "unknown colour space");
        longjmp(state.jump, 1);
    }
    // libjpeg's defaults, which Pillow keeps (it changes them only in draft mode): spelled out here on purpose.
    cinfo.dct_method = JDCT_ISLOW;
    cinfo.do_fancy_upsampling = TRUE;
    cinfo.do_block_smoothing = TRUE;
    cinfo.scale_num = 1;
    cinfo.scale_denom = 1;
    jpeg_start_decompress(&cinfo);  // reads every scan of a progressive or multi-scan file
    if (cinfo.output_width != cinfo.image_width || cinfo.output_height != cinfo.image_height ||
        cinfo.output_components != components) {
        copy_message(message, message_size, "unexpected output layout");
        longjmp(state.jump, 1);
    }
    size_t width = cinfo.output_width, height = cinfo.output_height;
    pixels = malloc(width * height * 3 > 0 ? width * height * 3 : 1);
    if (components != 3) row = malloc(width * (size_t)components);
    if (pixels == NULL || (components != 3 && row == NULL)) {
        free(pixels);
        free(row);
        jpeg_destroy_decompress(&cinfo);
        return JPEGIO_OUT_OF_MEMORY;
    }
    while (cinfo.output_scanline < cinfo.output_height) {
        size_t y = cinfo.output_scanline;
        uint8_t *out = pixels + y * width * 3;
        JSAMPROW target = components == 3 ? out : row;
        if (jpeg_read_scanlines(&cinfo, &target, 1) != 1) {
            copy_message(message, message_size, "decoder returned no scanline");
            longjmp(state.jump, 1);
        }
        if (components == 1) {
            for (size_t x = 0; x < width; x++) out[3 * x] = out[3 * x + 1] = out[3 * x + 2] = row[x];
        } else if (components == 4) {
            for (size_t x = 0; x < width; x++) {
                const uint8_t *cmyk = row + 4 * x;
                out[3 * x] = cmyk_channel(cmyk[0], cmyk[3]);
                out[3 * x + 1] = cmyk_channel(cmyk[1], cmyk[3]);
                out[3 * x + 2] = cmyk_channel(cmyk[2], cmyk[3]);
            }
        }
    }
    jpeg_finish_decompress(&cinfo);  // reads to EOI: a file cut after the last scan is truncated too
    info->scans = cinfo.input_scan_number;
    free(row);
    row = NULL;
    jpeg_destroy_decompress(&cinfo);
    *pixels_out = pixels;
    return JPEGIO_OK;
}

void jpegio_free(void *pointer) { free(pointer); }

#define JPEGIO_STRING(x) #x
#define JPEGIO_VERSION_STRING(x) JPEGIO_STRING(x)

const char *jpegio_libjpeg_version(void) {
#ifdef LIBJPEG_TURBO_VERSION
    return JPEGIO_VERSION_STRING(LIBJPEG_TURBO_VERSION);
#else
    return "libjpeg " JPEGIO_VERSION_STRING(JPEG_LIB_VERSION);
#endif
}
