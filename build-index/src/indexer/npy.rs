//! Reads NumPy `.npy` files of embeddings (2-D, little-endian float32 or float16, C order), as
//! `numpy.save` writes them for clip-retrieval and most embedding jobs. The header is a short
//! Python dict literal, read here directly rather than through a NumPy crate.

/// A matrix read from an `.npy` file, as f32, row after row.
#[derive(Debug, PartialEq)]
pub(crate) struct Matrix {
    /// Rows (embeddings).
    pub(crate) rows: usize,
    /// Width of each row.
    pub(crate) cols: usize,
    /// `rows * cols` values.
    pub(crate) data: Vec<f32>,
}

impl Matrix {
    /// Row `i`.
    pub(crate) fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.cols..(i + 1) * self.cols]
    }
}

/// Why an `.npy` file cannot be read as embeddings.
#[derive(Debug, thiserror::Error)]
pub(crate) enum NpyError {
    /// The file does not start with NumPy's magic.
    #[error("not a NumPy .npy file (no \\x93NUMPY at its start); give the .npy numpy.save wrote")]
    Magic,
    /// The header is cut short or unreadable.
    #[error("the .npy header is damaged ({0}); write the file again with numpy.save")]
    Header(&'static str),
    /// Values of a type other than little-endian float32/float16.
    #[error(
        "the values are {0:?}, not little-endian float32 (<f4) or float16 (<f2); save \
         arr.astype('<f4')"
    )]
    Dtype(String),
    /// Fortran (column-major) order.
    #[error("the array is stored in Fortran order; save numpy.ascontiguousarray(arr)")]
    Fortran,
    /// Not a 2-D array.
    #[error("the array's shape is ({0}), not (rows, width); save a 2-D array")]
    Shape(String),
    /// Fewer data bytes than the shape needs.
    #[error(
        "the file holds {have} bytes of values, its header promises {want}: it is cut short; copy it again"
    )]
    Truncated {
        /// Bytes present.
        have: usize,
        /// Bytes the shape needs.
        want: usize,
    },
}

/// Parses an `.npy` file's bytes.
pub(crate) fn parse(bytes: &[u8]) -> Result<Matrix, NpyError> {
    if bytes.get(..6) != Some(b"\x93NUMPY") {
        return Err(NpyError::Magic);
    }
    let major = *bytes.get(6).ok_or(NpyError::Header("cut short"))?;
    let (len, start) = match major {
        1 => (
            bytes
                .get(8..10)
                .map(|b| u16::from_le_bytes([b[0], b[1]]) as usize),
            10,
        ),
        2 | 3 => (
            bytes
                .get(8..12)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize),
            12,
        ),
        _ => return Err(NpyError::Header("unknown format version")),
    };
    let len = len.ok_or(NpyError::Header("cut short"))?;
    let header = bytes
        .get(start..start + len)
        .and_then(|h| std::str::from_utf8(h).ok())
        .ok_or(NpyError::Header("cut short"))?;
    let descr = quoted(value(header, "descr")?).ok_or(NpyError::Header("no descr"))?;
    let fortran = value(header, "fortran_order")?;
    if fortran.starts_with("True") {
        return Err(NpyError::Fortran);
    }
    let shape = value(header, "shape")?;
    let shape = shape
        .strip_prefix('(')
        .and_then(|s| s.split(')').next())
        .ok_or(NpyError::Header("no shape"))?;
    let dims: Vec<usize> = shape
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(|d| d.trim_end_matches('L').parse())
        .collect::<Result<_, _>>()
        .map_err(|_| NpyError::Header("the shape is not numbers"))?;
    let [rows, cols] = dims[..] else {
        return Err(NpyError::Shape(shape.trim().to_string()));
    };
    let size = match descr {
        "<f4" => 4,
        "<f2" => 2,
        other => return Err(NpyError::Dtype(other.to_string())),
    };
    let body = &bytes[start + len..];
    let want = rows
        .checked_mul(cols)
        .and_then(|n| n.checked_mul(size))
        .ok_or(NpyError::Header("the shape is too large"))?;
    if body.len() < want {
        return Err(NpyError::Truncated {
            have: body.len(),
            want,
        });
    }
    let data = if size == 4 {
        body[..want]
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect()
    } else {
        body[..want]
            .chunks_exact(2)
            .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect()
    };
    Ok(Matrix { rows, cols, data })
}

/// The text after `'key':` in the header dict.
fn value<'h>(header: &'h str, key: &str) -> Result<&'h str, NpyError> {
    ["'", "\""]
        .iter()
        .find_map(|q| header.split_once(&format!("{q}{key}{q}")))
        .and_then(|(_, rest)| rest.trim_start().strip_prefix(':'))
        .map(str::trim_start)
        .ok_or(NpyError::Header("a key is missing"))
}

/// The string literal at the start of `s`.
fn quoted(s: &str) -> Option<&str> {
    let q = s.chars().next().filter(|c| *c == '\'' || *c == '"')?;
    s[1..].split(q).next()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float32_and_float16_matrices_are_read() {
        let m = parse(&vitrine_testkit::npy_f32(
            2,
            3,
            &[1.0, 2.0, 3.0, 4.0, 5.0, -6.5],
        ))
        .unwrap();
        assert_eq!((m.rows, m.cols, m.row(1)), (2, 3, &[4.0, 5.0, -6.5][..]));
        // numpy.save(np.array([[1, -2]], dtype='<f2')), version 2 header.
        let header = "{'descr': '<f2', 'fortran_order': False, 'shape': (1, 2), }\n";
        let mut f16 = b"\x93NUMPY\x02\x00".to_vec();
        f16.extend_from_slice(&(header.len() as u32).to_le_bytes());
        f16.extend_from_slice(header.as_bytes());
        f16.extend_from_slice(&[0x00, 0x3C, 0x00, 0xC0]);
        assert_eq!(parse(&f16).unwrap().data, [1.0, -2.0]);
    }

    #[test]
    fn other_files_types_and_shapes_are_refused_with_the_fix() {
        let good = vitrine_testkit::npy_f32(2, 2, &[0.0; 4]);
        let text = |b: &[u8]| parse(b).unwrap_err().to_string();
        assert!(text(b"PK\x03\x04").contains("not a NumPy .npy file"));
        let mut be = good.clone();
        let at = be.windows(3).position(|w| w == b"<f4").unwrap();
        be[at] = b'>';
        assert!(text(&be).contains("\">f4\", not little-endian float32"));
        let mut fortran = good.clone();
        let at = fortran.windows(5).position(|w| w == b"False").unwrap();
        fortran[at..at + 5].copy_from_slice(b"True ");
        assert!(text(&fortran).contains("Fortran order"));
        let mut flat = good.clone();
        let at = flat.windows(6).position(|w| w == b"(2, 2)").unwrap();
        flat[at..at + 6].copy_from_slice(b"(4,)  ");
        assert!(text(&flat).contains("shape is (4,)"));
        assert!(text(&good[..good.len() - 1]).contains("cut short"));
    }
}
