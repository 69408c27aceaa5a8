// The C side of image decoding and encoding for Segmentation.
//
// libjpeg and libpng report errors by calling a handler that must not return;
// the only way back is longjmp, which Swift cannot do. Every libjpeg/libpng
// call therefore happens here, behind setjmp, and each function returns a
// status plus a message for Swift to throw. Damaged files are errors: libjpeg
// warnings (premature end of data, corrupt data) and libpng CRC errors,
// benign errors and warnings all fail the decode.
//
// Pixel buffers are allocated with malloc only after the declared
// width × height has been checked against the caller's limit; the caller owns
// them and releases them with seg_codec_free.

#ifndef SEG_IMAGE_CODEC_H
#define SEG_IMAGE_CODEC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// The outcome of a call; the message buffer says more for every non-OK value.
typedef enum seg_codec_status {
    SEG_CODEC_OK = 0,
    /// The library reported an error or a warning: the file is damaged.
    SEG_CODEC_CORRUPT = 1,
    /// The declared size is above the caller's pixel limit, or a row would be
    /// absurdly long; the image's width and height hold the declared size.
    SEG_CODEC_TOO_LARGE = 2,
    /// A well-formed file in a form this decoder refuses (the message says which).
    SEG_CODEC_UNSUPPORTED = 3,
    /// Class-id mode only: the PNG has colour or alpha channels; the message
    /// names its layout ("RGB", "RGBA", "grayscale+alpha").
    SEG_CODEC_NOT_SINGLE_CHANNEL = 4,
    /// malloc failed.
    SEG_CODEC_OUT_OF_MEMORY = 5,
} seg_codec_status;

/// A decoded image: height rows of width × channels bytes, no padding.
typedef struct seg_codec_image {
    uint32_t width;
    uint32_t height;
    /// 3 (RGB) or 1 (class ids).
    uint32_t channels;
    /// From malloc, or NULL when the call failed; release with seg_codec_free.
    uint8_t *pixels;
} seg_codec_image;

/// The message buffer size that always holds a whole message.
#define SEG_CODEC_MESSAGE_CAPACITY 256

/// A PNG whose rows would exceed this many bytes at 8 bytes a pixel (the
/// widest form libpng works in) is refused as too large whatever the pixel
/// limit: 64 MiB, so widths above 8,388,608. (JPEG stops at 65,500.)
#define SEG_CODEC_MAXIMUM_ROW_BYTES (64u * 1024u * 1024u)

/// A progressive JPEG with more scans than this is refused (a real one has
/// about ten; a crafted one with thousands makes decoding quadratic).
#define SEG_CODEC_MAXIMUM_JPEG_SCANS 1000

/// Decodes a JPEG (baseline, progressive or arithmetic-coded) to 8-bit RGB.
/// Grayscale is replicated to RGB; CMYK and YCCK are converted with the
/// Adobe (inverted) convention that Photoshop and Pillow use:
/// R = C·K / 255 on the stored values.
seg_codec_status seg_jpeg_decode_rgb(const uint8_t *data, size_t size, uint64_t maximum_pixels,
                                     seg_codec_image *image, char *message, size_t message_capacity);

typedef enum seg_png_mode {
    /// 8-bit RGB: gray replicated, alpha dropped, palette expanded to its
    /// colours, 16-bit reduced to its high byte.
    SEG_PNG_RGB = 0,
    /// One channel of raw values, for annotations: the gray value, or the
    /// palette index (never its colour). RGB, RGBA and gray+alpha are refused
    /// with SEG_CODEC_NOT_SINGLE_CHANNEL, 16-bit with SEG_CODEC_UNSUPPORTED.
    /// Bit depths 1, 2 and 4 give their raw values 0…2^depth − 1.
    SEG_PNG_CLASS_IDS = 1,
} seg_png_mode;

/// Decodes a PNG in the given mode.
seg_codec_status seg_png_decode(const uint8_t *data, size_t size, seg_png_mode mode, uint64_t maximum_pixels,
                                seg_codec_image *image, char *message, size_t message_capacity);

/// Encodes height × width × channels bytes (channels 1: 8-bit gray; 3: RGB)
/// as a PNG. On success *png (from malloc, release with seg_codec_free) holds
/// *png_size bytes.
seg_codec_status seg_png_encode(const uint8_t *pixels, uint32_t width, uint32_t height, uint32_t channels,
                                uint8_t **png, size_t *png_size, char *message, size_t message_capacity);

/// Encodes height rows of width × 3 RGB bytes as a baseline JPEG of the given
/// quality (1–100). On success *jpeg (from malloc; seg_codec_free) and *jpeg_size
/// hold the file. For generated benchmark and demo data.
seg_codec_status seg_jpeg_encode(const uint8_t *rgb, uint32_t width, uint32_t height, int quality,
                                 uint8_t **jpeg, size_t *jpeg_size, char *message, size_t message_capacity);

/// Releases a buffer returned by this module.
void seg_codec_free(void *pointer);

#ifdef __cplusplus
}
#endif

#endif
