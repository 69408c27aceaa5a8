import CImageCodec
import Foundation

/// JPEG decoding through CImageCodec (libjpeg behind setjmp; see
/// Sources/CImageCodec). Swift never imports CJPEG itself: libjpeg's error
/// handler must longjmp, which only C can do.
enum JPEG {
    /// Baseline, progressive or arithmetic-coded JPEG → 8-bit RGB. Grayscale
    /// is replicated; CMYK/YCCK are converted with the Adobe convention.
    static func decodeRGB(_ data: Data, file: String, maximumPixels: Int) throws -> RGBImage {
        let decoded = try decodeWithCodec(data, file: file, format: .jpeg, maximumPixels: maximumPixels, channels: 3) {
            seg_jpeg_decode_rgb($0, $1, $2, $3, $4, $5)
        }
        return RGBImage(width: decoded.width, height: decoded.height, pixels: decoded.pixels)
    }
}
