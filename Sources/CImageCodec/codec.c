// JPEG and PNG decoding behind setjmp, PNG encoding. See include/CImageCodec.h.

#include "CImageCodec.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h>
#include <png.h>

void seg_codec_free(void *pointer) { free(pointer); }

static void seg_copy_message(char *message, size_t capacity, const char *text) {
    if (message != NULL && capacity > 0) snprintf(message, capacity, "%s", text);
}

// MARK: - JPEG

struct seg_jpeg_error {
    struct jpeg_error_mgr manager;  // first, so a j_common_ptr's err is this struct
    jmp_buf jump;
    seg_codec_status status;
    char message[JMSG_LENGTH_MAX > SEG_CODEC_MESSAGE_CAPACITY ? JMSG_LENGTH_MAX : SEG_CODEC_MESSAGE_CAPACITY];
};

__attribute__((noreturn)) static void seg_jpeg_error_exit(j_common_ptr cinfo) {
    struct seg_jpeg_error *error = (struct seg_jpeg_error *)cinfo->err;
    (*cinfo->err->format_message)(cinfo, error->message);
    error->status = SEG_CODEC_CORRUPT;
    longjmp(error->jump, 1);
}

// libjpeg reports recoverable damage (premature end of data, corrupt
// entropy-coded data, extraneous bytes) as warnings, level −1, and carries on
// with grey padding. Damaged files are errors, so a warning ends the decode.
// Trace messages (level ≥ 0) are ignored.
static void seg_jpeg_emit_message(j_common_ptr cinfo, int level) {
    if (level < 0) seg_jpeg_error_exit(cinfo);
}

// Called between scans and rows; bounds the number of progressive scans.
static void seg_jpeg_progress(j_common_ptr cinfo) {
    if (!cinfo->is_decompressor) return;
    j_decompress_ptr decompress = (j_decompress_ptr)cinfo;
    if (decompress->input_scan_number > SEG_CODEC_MAXIMUM_JPEG_SCANS) {
        struct seg_jpeg_error *error = (struct seg_jpeg_error *)cinfo->err;
        snprintf(error->message, sizeof error->message, "more than %d progressive scans", SEG_CODEC_MAXIMUM_JPEG_SCANS);
        error->status = SEG_CODEC_CORRUPT;
        longjmp(error->jump, 1);
    }
}

__attribute__((noreturn)) static void seg_jpeg_fail(j_decompress_ptr cinfo, seg_codec_status status, const char *format, ...) {
    struct seg_jpeg_error *error = (struct seg_jpeg_error *)cinfo->err;
    va_list arguments;
    va_start(arguments, format);
    vsnprintf(error->message, sizeof error->message, format, arguments);
    va_end(arguments);
    error->status = status;
    longjmp(error->jump, 1);
}

seg_codec_status seg_jpeg_decode_rgb(const uint8_t *data, size_t size, uint64_t maximum_pixels,
                                     seg_codec_image *image, char *message, size_t message_capacity) {
    memset(image, 0, sizeof *image);
    seg_copy_message(message, message_capacity, "");

    struct jpeg_decompress_struct cinfo;
    struct seg_jpeg_error error;
    struct jpeg_progress_mgr progress;
    // Written after setjmp and read after longjmp, so volatile.
    uint8_t *volatile pixels = NULL;
    uint8_t *volatile cmyk_row = NULL;

    memset(&cinfo, 0, sizeof cinfo);
    memset(&error, 0, sizeof error);
    memset(&progress, 0, sizeof progress);
    cinfo.err = jpeg_std_error(&error.manager);
    error.manager.error_exit = seg_jpeg_error_exit;
    error.manager.emit_message = seg_jpeg_emit_message;
    error.status = SEG_CODEC_CORRUPT;

    if (setjmp(error.jump)) {
        jpeg_destroy_decompress(&cinfo);
        free(pixels);
        free(cmyk_row);
        seg_copy_message(message, message_capacity, error.message);
        return error.status;
    }

    jpeg_create_decompress(&cinfo);
    progress.progress_monitor = seg_jpeg_progress;
    cinfo.progress = &progress;
    jpeg_mem_src(&cinfo, data, (unsigned long)size);  // size 0 is an error ("Empty input buffer")
    (void)jpeg_read_header(&cinfo, TRUE);

    uint64_t declared = (uint64_t)cinfo.image_width * (uint64_t)cinfo.image_height;
    if (declared > maximum_pixels) {
        image->width = cinfo.image_width;
        image->height = cinfo.image_height;
        seg_jpeg_fail(&cinfo, SEG_CODEC_TOO_LARGE, "declared size %u×%u", cinfo.image_width, cinfo.image_height);
    }

    int cmyk = 0;
    switch (cinfo.jpeg_color_space) {
    case JCS_GRAYSCALE:
    case JCS_YCbCr:
    case JCS_RGB:
        cinfo.out_color_space = JCS_RGB;
        break;
    case JCS_CMYK:
    case JCS_YCCK:  // libjpeg turns YCCK into CMYK; the CMYK → RGB step is below
        cinfo.out_color_space = JCS_CMYK;
        cmyk = 1;
        break;
    default:
        seg_jpeg_fail(&cinfo, SEG_CODEC_UNSUPPORTED, "JPEG with %d colour components in an unknown colour space",
                      cinfo.num_components);
    }
    cinfo.dct_method = JDCT_ISLOW;  // libjpeg's default and Pillow's: exact, reproducible
    (void)jpeg_start_decompress(&cinfo);

    const JDIMENSION width = cinfo.output_width, height = cinfo.output_height;
    if (width != cinfo.image_width || height != cinfo.image_height || cinfo.output_components != (cmyk ? 4 : 3)) {
        seg_jpeg_fail(&cinfo, SEG_CODEC_UNSUPPORTED, "libjpeg produced %u×%u×%d for a %u×%u image", width, height,
                      cinfo.output_components, cinfo.image_width, cinfo.image_height);
    }
    const size_t row_bytes = (size_t)width * 3;  // width ≤ 65500 (JPEG_MAX_DIMENSION): no overflow
    pixels = malloc(row_bytes * height > 0 ? row_bytes * height : 1);
    if (pixels == NULL) seg_jpeg_fail(&cinfo, SEG_CODEC_OUT_OF_MEMORY, "out of memory for %u×%u pixels", width, height);
    if (cmyk) {
        cmyk_row = malloc((size_t)width * 4);
        if (cmyk_row == NULL) seg_jpeg_fail(&cinfo, SEG_CODEC_OUT_OF_MEMORY, "out of memory for a row");
    }

    while (cinfo.output_scanline < height) {
        const JDIMENSION y = cinfo.output_scanline;
        uint8_t *target = pixels + row_bytes * y;
        JSAMPROW row = cmyk ? cmyk_row : target;
        if (jpeg_read_scanlines(&cinfo, &row, 1) != 1) {
            // Cannot happen with a memory source (it never suspends); an error, not a loop, if it does.
            seg_jpeg_fail(&cinfo, SEG_CODEC_CORRUPT, "libjpeg returned no data for row %u", y);
        }
        if (cmyk) {
            // Adobe CMYK is stored inverted (0 = full ink), so with the
            // stored values c, k: R = c·k / 255, rounded.
            const uint8_t *source = cmyk_row;
            for (JDIMENSION x = 0; x < width; x++, source += 4, target += 3) {
                const unsigned k = source[3];
                target[0] = (uint8_t)((source[0] * k + 127) / 255);
                target[1] = (uint8_t)((source[1] * k + 127) / 255);
                target[2] = (uint8_t)((source[2] * k + 127) / 255);
            }
        }
    }
    // Reads on to the EOI marker, so damage after the last row is found too.
    (void)jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    free(cmyk_row);

    image->width = width;
    image->height = height;
    image->channels = 3;
    image->pixels = pixels;
    return SEG_CODEC_OK;
}

// MARK: - PNG decoding (classic API)

struct seg_png_reader {
    const uint8_t *data;
    size_t size;
    size_t offset;
    seg_codec_status status;
    unsigned warnings;
    char message[SEG_CODEC_MESSAGE_CAPACITY];
};

static void seg_png_read(png_structp png, png_bytep out, size_t length) {
    struct seg_png_reader *reader = png_get_io_ptr(png);
    if (length > reader->size - reader->offset) png_error(png, "unexpected end of file (the file is truncated)");
    memcpy(out, reader->data + reader->offset, length);
    reader->offset += length;
}

__attribute__((noreturn)) static void seg_png_error(png_structp png, png_const_charp text) {
    struct seg_png_reader *reader = png_get_error_ptr(png);
    // Keep the first report: a warning that came first is usually the cause.
    if (reader->message[0] == 0) snprintf(reader->message, sizeof reader->message, "%s", text);
    png_longjmp(png, 1);
}

// Warnings are recorded and checked after reading the header and at the end:
// libpng continues after a warning, so stopping here is not needed for safety.
static void seg_png_warning(png_structp png, png_const_charp text) {
    struct seg_png_reader *reader = png_get_error_ptr(png);
    if (reader->warnings++ == 0 && reader->message[0] == 0) {
        snprintf(reader->message, sizeof reader->message, "%s", text);
    }
}

__attribute__((noreturn)) static void seg_png_fail(png_structp png, seg_codec_status status, const char *format, ...) {
    struct seg_png_reader *reader = png_get_error_ptr(png);
    va_list arguments;
    va_start(arguments, format);
    vsnprintf(reader->message, sizeof reader->message, format, arguments);
    va_end(arguments);
    reader->status = status;
    png_longjmp(png, 1);
}

static void seg_png_fail_on_warnings(png_structp png) {
    struct seg_png_reader *reader = png_get_error_ptr(png);
    if (reader->warnings > 0) png_longjmp(png, 1);  // the message is the first warning's
}

// Ancillary chunks that say nothing about the pixel values we return. libpng
// skips them (still checking their CRCs) instead of parsing them, so a
// malformed colour profile or text chunk cannot fail an otherwise good image.
// tRNS is among them: alpha is dropped either way.
static const png_byte seg_png_ignored_chunks[] = {
    'b', 'K', 'G', 'D', 0, 'c', 'H', 'R', 'M', 0, 'e', 'X', 'I', 'f', 0, 'g', 'A', 'M', 'A', 0,
    'h', 'I', 'S', 'T', 0, 'i', 'C', 'C', 'P', 0, 'i', 'T', 'X', 't', 0, 'o', 'F', 'F', 's', 0,
    'p', 'C', 'A', 'L', 0, 'p', 'H', 'Y', 's', 0, 's', 'B', 'I', 'T', 0, 's', 'C', 'A', 'L', 0,
    's', 'P', 'L', 'T', 0, 's', 'R', 'G', 'B', 0, 't', 'E', 'X', 't', 0, 't', 'I', 'M', 'E', 0,
    't', 'R', 'N', 'S', 0, 'z', 'T', 'X', 't', 0,
};

seg_codec_status seg_png_decode(const uint8_t *data, size_t size, seg_png_mode mode, uint64_t maximum_pixels,
                                seg_codec_image *image, char *message, size_t message_capacity) {
    memset(image, 0, sizeof *image);
    seg_copy_message(message, message_capacity, "");
    if (mode != SEG_PNG_RGB && mode != SEG_PNG_CLASS_IDS) {
        seg_copy_message(message, message_capacity, "unknown PNG decoding mode");
        return SEG_CODEC_UNSUPPORTED;
    }

    struct seg_png_reader reader;
    memset(&reader, 0, sizeof reader);
    reader.data = data;
    reader.size = size;
    reader.status = SEG_CODEC_CORRUPT;

    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &reader, seg_png_error, seg_png_warning);
    if (png == NULL) {
        seg_copy_message(message, message_capacity, "out of memory for the PNG decoder");
        return SEG_CODEC_OUT_OF_MEMORY;
    }
    png_infop info = png_create_info_struct(png);
    if (info == NULL) {
        png_destroy_read_struct(&png, NULL, NULL);
        seg_copy_message(message, message_capacity, "out of memory for the PNG decoder");
        return SEG_CODEC_OUT_OF_MEMORY;
    }
    uint8_t *volatile pixels = NULL;  // written after setjmp, read after longjmp

    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &info, NULL);
        free(pixels);
        seg_copy_message(message, message_capacity, reader.message[0] ? reader.message : "unknown libpng error");
        return reader.status;
    }

    png_set_read_fn(png, &reader, seg_png_read);
    // CRC errors in any chunk, critical or ancillary, end the decode; so do
    // "benign" errors (extra image data, too many IDATs, bad palette index…).
    png_set_crc_action(png, PNG_CRC_ERROR_QUIT, PNG_CRC_ERROR_QUIT);
    png_set_benign_errors(png, 0);
    png_set_keep_unknown_chunks(png, PNG_HANDLE_CHUNK_NEVER, seg_png_ignored_chunks,
                                (int)(sizeof seg_png_ignored_chunks / 5));
    // Our own limits below replace libpng's default 1,000,000 × 1,000,000.
    png_set_user_limits(png, PNG_UINT_31_MAX, PNG_UINT_31_MAX);
    if (mode == SEG_PNG_CLASS_IDS) {
        // A palette index is a class id whether or not the palette has an
        // entry for it; only the image's colours need the palette.
        png_set_check_for_invalid_index(png, 0);
    }

    png_read_info(png, info);
    seg_png_fail_on_warnings(png);

    png_uint_32 width = 0, height = 0;
    int bit_depth = 0, color_type = 0;
    png_get_IHDR(png, info, &width, &height, &bit_depth, &color_type, NULL, NULL, NULL);
    const uint64_t declared = (uint64_t)width * (uint64_t)height;
    // libpng works on rows of up to 8 bytes a pixel (16-bit RGBA) whatever it
    // finally returns; refuse rows that would be absurdly long at that depth.
    if (declared > maximum_pixels || (uint64_t)width * 8 > SEG_CODEC_MAXIMUM_ROW_BYTES) {
        image->width = width;
        image->height = height;
        seg_png_fail(png, SEG_CODEC_TOO_LARGE, "declared size %u×%u", (unsigned)width, (unsigned)height);
    }

    uint32_t channels;
    int palette_indices = 0;  // RGB mode, palette image: read indices, then look them up
    if (mode == SEG_PNG_CLASS_IDS) {
        switch (color_type) {
        case PNG_COLOR_TYPE_RGB: seg_png_fail(png, SEG_CODEC_NOT_SINGLE_CHANNEL, "RGB");
        case PNG_COLOR_TYPE_RGB_ALPHA: seg_png_fail(png, SEG_CODEC_NOT_SINGLE_CHANNEL, "RGBA");
        case PNG_COLOR_TYPE_GRAY_ALPHA: seg_png_fail(png, SEG_CODEC_NOT_SINGLE_CHANNEL, "grayscale+alpha");
        default: break;
        }
        if (bit_depth == 16) {
            seg_png_fail(png, SEG_CODEC_UNSUPPORTED,
                         "annotation is a 16-bit grayscale PNG; annotations must be 8-bit (values 0–255)");
        }
        png_set_packing(png);  // 1, 2, 4 bits → one byte each, values unscaled
        channels = 1;
    } else {
        if (color_type == PNG_COLOR_TYPE_PALETTE) {
            // Indices, expanded below: libpng's own expansion paints an index
            // beyond the palette black without a word.
            png_set_packing(png);
            palette_indices = 1;
        } else {
            if (bit_depth == 16) png_set_strip_16(png);  // high byte, as Pillow and OpenCV do
            if (color_type == PNG_COLOR_TYPE_GRAY && bit_depth < 8) png_set_expand_gray_1_2_4_to_8(png);
            if ((color_type & PNG_COLOR_MASK_COLOR) == 0) png_set_gray_to_rgb(png);
            if ((color_type & PNG_COLOR_MASK_ALPHA) != 0) png_set_strip_alpha(png);
        }
        channels = 3;
    }
    const int passes = png_set_interlace_handling(png);
    png_read_update_info(png, info);

    const size_t row_bytes = png_get_rowbytes(png, info);
    const uint32_t read_channels = palette_indices ? 1 : channels;
    if (png_get_channels(png, info) != read_channels || png_get_bit_depth(png, info) != 8 ||
        row_bytes != (size_t)width * read_channels) {
        seg_png_fail(png, SEG_CODEC_UNSUPPORTED, "libpng produced %d channels of %d bits, %zu bytes a row, for colour type %d",
                     png_get_channels(png, info), png_get_bit_depth(png, info), row_bytes, color_type);
    }
    pixels = malloc((size_t)width * height * channels > 0 ? (size_t)width * height * channels : 1);
    if (pixels == NULL) seg_png_fail(png, SEG_CODEC_OUT_OF_MEMORY, "out of memory for %u×%u pixels", (unsigned)width, (unsigned)height);
    // Row by row (interlaced images pass over every row several times), so no
    // array of row pointers is needed.
    for (int pass = 0; pass < passes; pass++) {
        for (png_uint_32 y = 0; y < height; y++) png_read_row(png, pixels + row_bytes * y, NULL);
    }
    // Reads the chunks after the image data through IEND, checking their CRCs
    // and that no image data is left over.
    png_read_end(png, NULL);
    seg_png_fail_on_warnings(png);

    if (palette_indices) {
        png_colorp palette = NULL;
        int palette_size = 0;
        if (png_get_PLTE(png, info, &palette, &palette_size) != PNG_INFO_PLTE || palette == NULL) palette_size = 0;
        // In place, from the end: pixel i's colour goes to bytes 3i…3i+2, at
        // or after index byte i, so no index is overwritten before it is read.
        for (size_t i = (size_t)width * height; i-- > 0;) {
            const uint8_t index = pixels[i];
            if (index >= palette_size) {
                seg_png_fail(png, SEG_CODEC_CORRUPT, "pixel (%zu, %zu) has palette index %u but the palette has %d colours",
                             i % width, i / width, index, palette_size);
            }
            pixels[3 * i] = palette[index].red;
            pixels[3 * i + 1] = palette[index].green;
            pixels[3 * i + 2] = palette[index].blue;
        }
    }
    png_destroy_read_struct(&png, &info, NULL);

    image->width = width;
    image->height = height;
    image->channels = channels;
    image->pixels = pixels;
    return SEG_CODEC_OK;
}

// MARK: - PNG encoding (simplified API)

seg_codec_status seg_png_encode(const uint8_t *pixels, uint32_t width, uint32_t height, uint32_t channels,
                                uint8_t **png, size_t *png_size, char *message, size_t message_capacity) {
    *png = NULL;
    *png_size = 0;
    seg_copy_message(message, message_capacity, "");
    if (channels != 1 && channels != 3) {
        seg_copy_message(message, message_capacity, "only 1 (gray) or 3 (RGB) channels can be encoded");
        return SEG_CODEC_UNSUPPORTED;
    }
    if (width == 0 || height == 0 || width > PNG_UINT_31_MAX || height > PNG_UINT_31_MAX) {
        seg_copy_message(message, message_capacity, "a PNG must be between 1×1 and 2³¹−1 × 2³¹−1 pixels");
        return SEG_CODEC_UNSUPPORTED;
    }

    png_image header;
    memset(&header, 0, sizeof header);
    header.version = PNG_IMAGE_VERSION;
    header.width = width;
    header.height = height;
    header.format = channels == 1 ? PNG_FORMAT_GRAY : PNG_FORMAT_RGB;

    // One pass into a buffer of the documented worst-case size.
    png_alloc_size_t capacity = PNG_IMAGE_PNG_SIZE_MAX(header);
    uint8_t *buffer = malloc(capacity);
    if (buffer == NULL) {
        seg_copy_message(message, message_capacity, "out of memory for the encoded PNG");
        return SEG_CODEC_OUT_OF_MEMORY;
    }
    png_alloc_size_t written = capacity;
    if (!png_image_write_to_memory(&header, buffer, &written, 0, pixels, 0, NULL)) {
        seg_copy_message(message, message_capacity, header.message);
        png_image_free(&header);
        free(buffer);
        return SEG_CODEC_UNSUPPORTED;
    }
    *png = buffer;
    *png_size = written;
    return SEG_CODEC_OK;
}

// ---------------------------------------------------------------------------
// JPEG encoding (baseline, 4:2:0, into memory).

seg_codec_status seg_jpeg_encode(const uint8_t *rgb, uint32_t width, uint32_t height, int quality,
                                 uint8_t **jpeg, size_t *jpeg_size, char *message, size_t message_capacity) {
    *jpeg = NULL;
    *jpeg_size = 0;
    if (width == 0 || height == 0 || width > 65500 || height > 65500) {
        seg_copy_message(message, message_capacity, "JPEG dimensions must be 1…65500");
        return SEG_CODEC_UNSUPPORTED;
    }
    struct jpeg_compress_struct cinfo;
    struct seg_jpeg_error error;
    unsigned char *volatile buffer = NULL;  // written by libjpeg after setjmp
    unsigned long size = 0;
    cinfo.err = jpeg_std_error(&error.manager);
    error.manager.error_exit = seg_jpeg_error_exit;
    error.status = SEG_CODEC_OK;
    error.message[0] = 0;
    if (setjmp(error.jump)) {
        seg_copy_message(message, message_capacity, error.message);
        jpeg_destroy_compress(&cinfo);
        free(buffer);
        return SEG_CODEC_CORRUPT;
    }
    jpeg_CreateCompress(&cinfo, JPEG_LIB_VERSION, sizeof(cinfo));
    jpeg_mem_dest(&cinfo, (unsigned char **)&buffer, &size);
    cinfo.image_width = width;
    cinfo.image_height = height;
    cinfo.input_components = 3;
    cinfo.in_color_space = JCS_RGB;
    jpeg_set_defaults(&cinfo);
    jpeg_set_quality(&cinfo, quality < 1 ? 1 : (quality > 100 ? 100 : quality), TRUE);
    jpeg_start_compress(&cinfo, TRUE);
    while (cinfo.next_scanline < cinfo.image_height) {
        JSAMPROW row = (JSAMPROW)(rgb + (size_t)cinfo.next_scanline * width * 3);
        jpeg_write_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_compress(&cinfo);
    jpeg_destroy_compress(&cinfo);
    *jpeg = buffer;
    *jpeg_size = size;
    return SEG_CODEC_OK;
}
