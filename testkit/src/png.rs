//! A PNG reader for the screen tests: 8-bit grey, RGB or RGBA, not interlaced (what QEMU's
//! `screendump` and Chromium write). `miniz_oxide` inflates (2 crates, a few seconds to
//! build); the scanline filters are undone here.

use crate::Result;

/// A decoded picture, as RGB pixels row by row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    pub width: u32,
    pub height: u32,
    pub rgb: Vec<[u8; 3]>,
}

impl Image {
    /// Pixels brighter than near black in rows `rows` (all columns).
    pub fn lit_in_rows(&self, rows: std::ops::Range<u32>) -> usize {
        let w = self.width as usize;
        let start = rows.start.min(self.height) as usize * w;
        let end = rows.end.min(self.height) as usize * w;
        self.rgb[start..end]
            .iter()
            .filter(|p| p.iter().any(|c| *c > 64))
            .count()
    }

    /// Pixels brighter than near black anywhere.
    pub fn lit(&self) -> usize {
        self.lit_in_rows(0..self.height)
    }
}

/// Decodes `png`.
pub fn decode(png: &[u8]) -> Result<Image> {
    let rest = png
        .strip_prefix(b"\x89PNG\r\n\x1a\n".as_slice())
        .ok_or("no PNG signature")?;
    let mut chunks = Vec::new();
    let mut at = rest;
    while at.len() >= 12 {
        let len = u32::from_be_bytes([at[0], at[1], at[2], at[3]]) as usize;
        let kind = &at[4..8];
        let data = at.get(8..8 + len).ok_or("truncated chunk")?;
        chunks.push((kind.to_vec(), data));
        at = at.get(12 + len..).ok_or("truncated chunk")?;
    }
    let (_, ihdr) = chunks.iter().find(|(k, _)| k == b"IHDR").ok_or("no IHDR")?;
    if ihdr.len() < 13 {
        return Err("short IHDR".into());
    }
    let width = u32::from_be_bytes([ihdr[0], ihdr[1], ihdr[2], ihdr[3]]);
    let height = u32::from_be_bytes([ihdr[4], ihdr[5], ihdr[6], ihdr[7]]);
    let (depth, color, interlace) = (ihdr[8], ihdr[9], ihdr[12]);
    let channels = match color {
        0 => 1,
        2 => 3,
        6 => 4,
        _ => return Err(format!("PNG color type {color} not supported").into()),
    };
    if depth != 8 || interlace != 0 {
        return Err(format!("PNG depth {depth}, interlace {interlace}: not supported").into());
    }
    let idat: Vec<u8> = chunks
        .iter()
        .filter(|(k, _)| k == b"IDAT")
        .flat_map(|(_, d)| d.iter().copied())
        .collect();
    let raw = miniz_oxide::inflate::decompress_to_vec_zlib(&idat)
        .map_err(|e| format!("PNG data does not inflate: {e:?}"))?;
    let stride = width as usize * channels;
    if raw.len() < (stride + 1) * height as usize {
        return Err("PNG data too short".into());
    }
    let mut prev = vec![0u8; stride];
    let mut rgb = Vec::with_capacity(width as usize * height as usize);
    for row in raw.chunks(stride + 1).take(height as usize) {
        let (filter, line) = (row[0], &row[1..]);
        let mut cur = vec![0u8; stride];
        for i in 0..stride {
            let a = if i >= channels { cur[i - channels] } else { 0 };
            let b = prev[i];
            let c = if i >= channels { prev[i - channels] } else { 0 };
            let predicted = match filter {
                0 => 0,
                1 => a,
                2 => b,
                3 => ((u16::from(a) + u16::from(b)) / 2) as u8,
                4 => paeth(a, b, c),
                f => return Err(format!("PNG filter {f}").into()),
            };
            cur[i] = line[i].wrapping_add(predicted);
        }
        for px in cur.chunks(channels) {
            rgb.push(match channels {
                1 => [px[0]; 3],
                _ => [px[0], px[1], px[2]],
            });
        }
        prev = cur;
    }
    Ok(Image { width, height, rgb })
}

fn paeth(a: u8, b: u8, c: u8) -> u8 {
    let p = i16::from(a) + i16::from(b) - i16::from(c);
    let (pa, pb, pc) = (
        (p - i16::from(a)).abs(),
        (p - i16::from(b)).abs(),
        (p - i16::from(c)).abs(),
    );
    if pa <= pb && pa <= pc {
        a
    } else if pb <= pc {
        b
    } else {
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 2x2 RGB PNG: red, green / magenta, white; one row filtered Sub, one Up.
    fn tiny() -> Vec<u8> {
        let raw: Vec<u8> = vec![
            1, 255, 0, 0, 1, 255, 0, // Sub: red, then green = red + (1, 255, 0) wrapped
            2, 0, 0, 255, 255, 0, 255, // Up: magenta = red + (0, 0, 255), white = green + ...
        ];
        let idat = miniz_oxide::deflate::compress_to_vec_zlib(&raw, 6);
        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        let mut chunk = |kind: &[u8], data: &[u8]| {
            png.extend_from_slice(&(data.len() as u32).to_be_bytes());
            png.extend_from_slice(kind);
            png.extend_from_slice(data);
            png.extend_from_slice(&[0; 4]); // the CRC is not checked
        };
        chunk(b"IHDR", &[0, 0, 0, 2, 0, 0, 0, 2, 8, 2, 0, 0, 0]);
        chunk(b"IDAT", &idat);
        chunk(b"IEND", &[]);
        png
    }

    #[test]
    fn decodes_filtered_rows() {
        let image = decode(&tiny()).unwrap();
        assert_eq!((image.width, image.height), (2, 2));
        assert_eq!(image.rgb[0], [255, 0, 0]);
        assert_eq!(image.rgb[1], [0, 255, 0]);
        assert_eq!(image.rgb[2], [255, 0, 255]);
        assert_eq!(image.rgb[3], [255, 255, 255]);
        assert_eq!(image.lit(), 4);
        assert!(decode(b"GIF89a").is_err());
    }
}
