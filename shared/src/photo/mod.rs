//! Profile photos: where an upload and an accepted photo live in the bucket (the one key
//! scheme of the bucket), and the check that an upload really is a JPEG or PNG image.
//! The presigned upload is [`presign`].

pub mod presign;
pub mod process;

use std::io::Cursor;

use uuid::Uuid;

use crate::ids::{ProfileId, TenantId};
use crate::model::Photo;

/// The largest photo accepted, in bytes (5 MiB; the contract's "≤ 5 MB").
pub const MAX_BYTES: u64 = 5_242_880;

/// The longest side of a photo accepted, in pixels.
pub const MAX_SIDE: u32 = 10_000;

/// The most pixels a photo may have (40 megapixels, e.g. 8,000 × 5,000): a JPEG is decoded
/// to one byte a pixel to check it, which must fit in process-photo's memory.
pub const MAX_PIXELS: u64 = 40_000_000;

/// Where uploads land: `uploads/<tenant>/<profile>/<upload id>`. The bucket's lifecycle rule
/// removes what is left under it after a day; process-photo is triggered by it.
pub const UPLOADS: &str = "uploads/";

/// Where accepted photos live: `photos/<tenant>/<profile>/<upload id>.<ext>`. The photo
/// distribution serves this folder (its origin path), and nothing else.
pub const PHOTOS: &str = "photos/";

/// The media types an upload may have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageType {
    Jpeg,
    Png,
}

impl ImageType {
    /// `image/jpeg` or `image/png`: what a client states when it asks for an upload.
    pub fn parse(content_type: &str) -> Option<Self> {
        match content_type {
            "image/jpeg" => Some(Self::Jpeg),
            "image/png" => Some(Self::Png),
            _ => None,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Self::Jpeg => "image/jpeg",
            Self::Png => "image/png",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Self::Jpeg => "jpg",
            Self::Png => "png",
        }
    }
}

/// One upload's object: whose profile it is for, and its id (a UUID v7, made when the
/// upload was granted, so a later grant orders after an earlier one).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Upload {
    pub tenant: TenantId,
    pub profile: ProfileId,
    pub id: Uuid,
}

impl Upload {
    /// A new upload for `profile`.
    pub fn new(tenant: TenantId, profile: ProfileId) -> Self {
        Self {
            tenant,
            profile,
            id: Uuid::now_v7(),
        }
    }

    /// Its object key.
    pub fn key(&self) -> String {
        format!("{UPLOADS}{}/{}/{}", self.tenant, self.profile, self.id)
    }

    /// The upload an object key names, if it is one: exactly the shape [`Upload::key`] makes.
    pub fn parse(key: &str) -> Option<Self> {
        let mut parts = key.strip_prefix(UPLOADS)?.split('/');
        let (Some(tenant), Some(profile), Some(id), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        let upload = Self {
            tenant: TenantId::new(tenant).ok()?,
            profile: ProfileId::parse(profile)?,
            id: Uuid::try_parse(id).ok()?,
        };
        // Only the canonical spelling (lower-case hyphenated ids) is ours.
        (upload.key() == key).then_some(upload)
    }

    /// The photo this upload becomes once accepted as `kind`: its object key, and its URL
    /// under `base_url` (the photo distribution, which serves [`PHOTOS`] at its root).
    pub fn photo(&self, kind: ImageType, base_url: &str) -> Photo {
        let path = format!(
            "{}/{}/{}.{}",
            self.tenant,
            self.profile,
            self.id,
            kind.extension()
        );
        Photo {
            upload: self.id,
            key: format!("{PHOTOS}{path}"),
            url: format!("{}/{path}", base_url.trim_end_matches('/')),
        }
    }
}

/// An image that passed [`check`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Checked {
    pub image_type: ImageType,
    pub width: u32,
    pub height: u32,
}

/// Why an upload is not accepted as a photo.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refused {
    /// Empty, or over [`MAX_BYTES`].
    Size(u64),
    /// Neither JPEG's nor PNG's signature.
    NotJpegOrPng,
    /// A JPEG or PNG signature, but the image does not decode: truncated, or damaged.
    Undecodable { kind: ImageType, cause: String },
    /// Decodable, but wider, taller or larger than a photo may be.
    Dimensions { width: u32, height: u32 },
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Size(n) => write!(f, "{n} bytes (1 to {MAX_BYTES} accepted)"),
            Self::NotJpegOrPng => f.write_str("neither a JPEG nor a PNG signature"),
            Self::Undecodable { kind, cause } => {
                write!(f, "a {} that does not decode: {cause}", kind.content_type())
            }
            Self::Dimensions { width, height } => write!(
                f,
                "{width}×{height} px (at most {MAX_SIDE} a side and {MAX_PIXELS} pixels)"
            ),
        }
    }
}

const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
const JPEG_SIGNATURE: &[u8] = &[0xFF, 0xD8, 0xFF];

/// Whether `bytes` are a whole JPEG or PNG image of a photo's size and dimensions. The
/// signature says which; the image-rs decoders (`zune-jpeg`, `png`) then read its header and
/// decode all of it, so a truncated or damaged file is refused, not only a wrong signature.
/// A PNG is decoded a row at a time; a JPEG to one byte a pixel, after its header is checked
/// against [`MAX_SIDE`] and [`MAX_PIXELS`].
pub fn check(bytes: &[u8]) -> Result<Checked, Refused> {
    let size = bytes.len() as u64;
    if !(1..=MAX_BYTES).contains(&size) {
        return Err(Refused::Size(size));
    }
    if bytes.starts_with(PNG_SIGNATURE) {
        check_png(bytes)
    } else if bytes.starts_with(JPEG_SIGNATURE) {
        check_jpeg(bytes)
    } else {
        Err(Refused::NotJpegOrPng)
    }
}

fn sane(kind: ImageType, width: u32, height: u32) -> Result<Checked, Refused> {
    let ok = (1..=MAX_SIDE).contains(&width)
        && (1..=MAX_SIDE).contains(&height)
        && u64::from(width) * u64::from(height) <= MAX_PIXELS;
    if ok {
        Ok(Checked {
            image_type: kind,
            width,
            height,
        })
    } else {
        Err(Refused::Dimensions { width, height })
    }
}

fn check_png(bytes: &[u8]) -> Result<Checked, Refused> {
    let undecodable = |e: png::DecodingError| Refused::Undecodable {
        kind: ImageType::Png,
        cause: e.to_string(),
    };
    let mut reader = png::Decoder::new(Cursor::new(bytes))
        .read_info()
        .map_err(undecodable)?;
    let (width, height) = (reader.info().width, reader.info().height);
    let checked = sane(ImageType::Png, width, height)?;
    // Every row, then the chunks to IEND: the image data and every checksum are read.
    while reader.next_row().map_err(undecodable)?.is_some() {}
    reader.finish().map_err(undecodable)?;
    Ok(checked)
}

fn check_jpeg(bytes: &[u8]) -> Result<Checked, Refused> {
    use zune_jpeg::JpegDecoder;
    use zune_jpeg::zune_core::bytestream::ZCursor;
    use zune_jpeg::zune_core::colorspace::ColorSpace;
    use zune_jpeg::zune_core::options::DecoderOptions;

    let undecodable = |e: zune_jpeg::errors::DecodeErrors| Refused::Undecodable {
        kind: ImageType::Jpeg,
        cause: e.to_string(),
    };
    let max = MAX_SIDE as usize;
    let options = DecoderOptions::default()
        .set_strict_mode(true)
        .set_max_width(max)
        .set_max_height(max)
        .jpeg_set_out_colorspace(ColorSpace::Luma);
    let mut decoder = JpegDecoder::new_with_options(ZCursor::new(bytes), options);
    decoder
        .decode_headers()
        .map_err(|e| match decoder.dimensions() {
            Some((w, h)) if w > max || h > max => Refused::Dimensions {
                width: u32::try_from(w).unwrap_or(u32::MAX),
                height: u32::try_from(h).unwrap_or(u32::MAX),
            },
            _ => undecodable(e),
        })?;
    let (width, height) = decoder.dimensions().ok_or_else(|| Refused::Undecodable {
        kind: ImageType::Jpeg,
        cause: "no frame header".into(),
    })?;
    let checked = sane(
        ImageType::Jpeg,
        u32::try_from(width).unwrap_or(u32::MAX),
        u32::try_from(height).unwrap_or(u32::MAX),
    )?;
    decoder.decode().map_err(undecodable)?;
    // The decoder fills a last row that ran out of data instead of failing, even in strict
    // mode, so a file cut near its end would pass: its end-of-image marker must follow the
    // last scan (entropy-coded data escapes every 0xFF, so the marker cannot occur inside).
    let marker = |m: u8| bytes.windows(2).rposition(|w| w == [0xFF, m]);
    match (marker(0xDA), marker(0xD9)) {
        (Some(scan), Some(end)) if end > scan => Ok(checked),
        _ => Err(Refused::Undecodable {
            kind: ImageType::Jpeg,
            cause: "no end-of-image marker after the last scan: truncated".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

    use super::*;
    use proptest::prelude::*;

    /// A real PNG, `width`×`height`, RGB, made by the `png` encoder.
    pub fn png(width: u32, height: u32) -> Vec<u8> {
        let mut out = Vec::new();
        let mut encoder = png::Encoder::new(&mut out, width, height);
        encoder.set_color(png::ColorType::Rgb);
        let mut writer = encoder.write_header().unwrap();
        let data: Vec<u8> = (0..width * height * 3).map(|i| (i % 251) as u8).collect();
        writer.write_image_data(&data).unwrap();
        writer.finish().unwrap();
        out
    }

    /// A real JPEG, `width`×`height`, RGB, made by `jpeg-encoder`.
    pub fn jpeg(width: u16, height: u16) -> Vec<u8> {
        let mut out = Vec::new();
        let data: Vec<u8> = (0..u32::from(width) * u32::from(height) * 3)
            .map(|i| (i % 253) as u8)
            .collect();
        jpeg_encoder::Encoder::new(&mut out, 85)
            .encode(&data, width, height, jpeg_encoder::ColorType::Rgb)
            .unwrap();
        out
    }

    #[test]
    fn a_real_png_and_a_real_jpeg_are_accepted_with_their_dimensions() {
        let p = check(&png(40, 30)).unwrap();
        assert_eq!((p.image_type, p.width, p.height), (ImageType::Png, 40, 30));
        let j = check(&jpeg(64, 48)).unwrap();
        assert_eq!((j.image_type, j.width, j.height), (ImageType::Jpeg, 64, 48));
    }

    #[test]
    fn a_gif_is_neither() {
        let gif = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;";
        assert_eq!(check(gif), Err(Refused::NotJpegOrPng));
    }

    #[test]
    fn a_truncated_png_or_jpeg_does_not_decode() {
        let p = png(40, 30);
        for cut in [8, 20, 40, p.len() / 2, p.len() - 12, p.len() - 1] {
            assert!(
                matches!(
                    check(&p[..cut]),
                    Err(Refused::Undecodable {
                        kind: ImageType::Png,
                        ..
                    })
                ),
                "png cut at {cut}: {:?}",
                check(&p[..cut])
            );
        }
        let j = jpeg(64, 48);
        for cut in [3, 20, j.len() / 2, j.len() - 20, j.len() - 1] {
            assert!(
                matches!(
                    check(&j[..cut]),
                    Err(Refused::Undecodable {
                        kind: ImageType::Jpeg,
                        ..
                    })
                ),
                "jpeg cut at {cut}: {:?}",
                check(&j[..cut])
            );
        }
    }

    #[test]
    fn a_png_wider_than_a_photo_may_be_is_refused_by_its_header() {
        assert_eq!(
            check(&png(MAX_SIDE + 1, 1)),
            Err(Refused::Dimensions {
                width: MAX_SIDE + 1,
                height: 1
            })
        );
    }

    #[test]
    fn sizes_outside_the_range_are_refused_before_decoding() {
        assert_eq!(check(&[]), Err(Refused::Size(0)));
        let mut big = png(1, 1);
        big.resize(MAX_BYTES as usize + 1, 0);
        assert_eq!(check(&big), Err(Refused::Size(MAX_BYTES + 1)));
    }

    #[test]
    fn an_upload_key_reads_back_only_in_its_own_spelling() {
        let up = Upload::new(TenantId::new("acme").unwrap(), ProfileId::generate());
        assert_eq!(Upload::parse(&up.key()), Some(up.clone()));
        let key = up.key();
        for other in [
            key.to_uppercase(),
            format!("{key}/x"),
            key.replacen("uploads/", "photos/", 1),
            key.replacen("acme", "ac/me", 1),
            format!("{key}.png"),
        ] {
            assert_eq!(Upload::parse(&other), None, "{other}");
        }
    }

    #[test]
    fn a_photo_lives_under_photos_and_its_url_under_the_base() {
        let up = Upload::new(TenantId::new("acme").unwrap(), ProfileId::generate());
        let photo = up.photo(ImageType::Png, "https://d1.cloudfront.net/");
        let path = format!("acme/{}/{}.png", up.profile, up.id);
        assert_eq!(photo.key, format!("photos/{path}"));
        assert_eq!(photo.url, format!("https://d1.cloudfront.net/{path}"));
        assert_eq!(photo.upload, up.id);
    }

    proptest! {
        /// Any bytes at all: an answer, never a panic; and an accepted one is a real image.
        #[test]
        fn any_bytes_get_an_answer(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            if let Ok(c) = check(&bytes) {
                prop_assert!(c.width >= 1 && c.height >= 1);
            }
        }

        /// A PNG with any one byte changed after its signature is refused or still decodes
        /// (a byte inside pixel data can change a pixel) — but never panics, and a change in
        /// a chunk's checksum-covered bytes is caught by the checksum.
        #[test]
        fn a_png_with_one_byte_changed_is_caught_by_its_checksums(at in 8usize..200, flip in 1u8..=255) {
            let mut p = png(8, 8);
            prop_assume!(at < p.len());
            p[at] ^= flip;
            prop_assert!(check(&p).is_err());
        }
    }
}
