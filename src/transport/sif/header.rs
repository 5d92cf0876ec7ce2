//! The SIF container: global header and descriptor table (Singularity Image
//! Format 1, as `github.com/sylabs/sif/v2` writes it and skopeo reads it).
//!
//! Parsed by hand: crates.io has no maintained SIF reader (the `sif-parser`
//! crate is an unrelated format), and the part needed here is two fixed
//! little-endian records. Everything read is bounded: the descriptor count
//! ([`MAX_DESCRIPTORS`]), the table and every object within the file.
//!
//! Layout (little endian, packed, as Go's `binary.Read` of sif's raw structs):
//! the 128-byte global header (32-byte launch script, `SIF_MAGIC\0`, version
//! `01\0`, 3 bytes deprecated arch, 16-byte UUID, created, modified, free and
//! total descriptor counts, descriptor table offset and size, data offset and
//! size: all i64), then at the table offset `total` descriptors of 585 bytes
//! (data type i32, used u8, id u32, group u32, link u32, offset, size, size with
//! padding, created, modified, uid, gid: i64; name 128 bytes; extra 384 bytes,
//! which for a partition starts with fs type i32, partition type i32, arch 3 bytes).

/// Bytes of the global header.
pub const HEADER_LEN: usize = 128;
/// Bytes of one descriptor.
pub const DESCRIPTOR_LEN: usize = 585;
/// Descriptors read at most (sif's tools create 48; a table larger than this
/// is refused, so that the table read is bounded: 4096 × 585 B ≈ 2.3 MiB).
pub const MAX_DESCRIPTORS: u64 = 4096;

const MAGIC: &[u8; 10] = b"SIF_MAGIC\0";
const VERSION: &[u8; 3] = b"01\0";

/// Data object types (sif's `DataType`).
pub const DATA_DEFFILE: i32 = 0x4001;
pub const DATA_PARTITION: i32 = 0x4004;
/// Partition file system: squashfs (sif's `FsSquash`).
pub const FS_SQUASH: i32 = 1;
/// Partition type: the primary system partition (sif's `PartPrimSys`).
pub const PART_PRIMSYS: i32 = 2;

/// The global header's fields that the transport uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The image's UUID.
    pub id: [u8; 16],
    /// Seconds since the epoch.
    pub created_at: i64,
    pub modified_at: i64,
    pub descriptors_total: u64,
    pub descriptors_offset: u64,
}

/// One used data object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descriptor {
    pub data_type: i32,
    pub id: u32,
    /// Within the file (checked).
    pub offset: u64,
    pub size: u64,
    /// For partitions: file system type, partition type, arch code (`02`…).
    pub partition: Option<Partition>,
}

/// A partition descriptor's extra fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    pub fs_type: i32,
    pub part_type: i32,
    pub arch: [u8; 3],
}

/// Read `N` bytes at `at` (callers check lengths first).
fn bytes<const N: usize>(b: &[u8], at: usize) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&b[at..at + N]);
    out
}
fn i64_at(b: &[u8], at: usize) -> i64 {
    i64::from_le_bytes(bytes(b, at))
}
fn i32_at(b: &[u8], at: usize) -> i32 {
    i32::from_le_bytes(bytes(b, at))
}
fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes(b, at))
}

/// A non-negative i64 as u64, or an error naming `what`.
fn unsigned(v: i64, what: &str) -> Result<u64, String> {
    u64::try_from(v).map_err(|_| format!("{what} is negative ({v})"))
}

/// Parse the global header of a file of `file_len` bytes; the descriptor
/// table it names must lie within the file.
pub fn parse_header(b: &[u8], file_len: u64) -> Result<Header, String> {
    if b.len() < HEADER_LEN {
        return Err(format!(
            "not a SIF file: {} bytes, shorter than the {HEADER_LEN}-byte SIF header",
            b.len()
        ));
    }
    if &b[32..42] != MAGIC {
        return Err("not a SIF file: no SIF_MAGIC in the header".into());
    }
    if &b[42..45] != VERSION {
        let v = String::from_utf8_lossy(&b[42..44]).into_owned();
        return Err(format!("unsupported SIF version {v:?} (want 01)"));
    }
    let total = unsigned(i64_at(b, 88), "descriptor count")?;
    let offset = unsigned(i64_at(b, 96), "descriptor table offset")?;
    let size = unsigned(i64_at(b, 104), "descriptor table size")?;
    if total > MAX_DESCRIPTORS {
        return Err(format!(
            "SIF header claims {total} descriptors, more than the {MAX_DESCRIPTORS} allowed"
        ));
    }
    let need = total * DESCRIPTOR_LEN as u64;
    if size < need {
        return Err(format!(
            "SIF descriptor table is {size} bytes, too small for {total} descriptors"
        ));
    }
    if offset.checked_add(need).is_none_or(|end| end > file_len) {
        return Err(format!(
            "SIF descriptor table (offset {offset}, {total} descriptors) extends past the end of the file ({file_len} bytes)"
        ));
    }
    Ok(Header {
        id: bytes(b, 48),
        created_at: i64_at(b, 64),
        modified_at: i64_at(b, 72),
        descriptors_total: total,
        descriptors_offset: offset,
    })
}

/// Parse the descriptor table (`header.descriptors_total` records) of a
/// file of `file_len` bytes: the used descriptors, each object's range
/// checked to lie within the file.
pub fn parse_descriptors(
    table: &[u8],
    total: u64,
    file_len: u64,
) -> Result<Vec<Descriptor>, String> {
    let count = usize::try_from(total.min(MAX_DESCRIPTORS)).unwrap_or(0);
    if table.len() < count * DESCRIPTOR_LEN {
        return Err("SIF descriptor table is truncated".into());
    }
    let mut out = Vec::new();
    for i in 0..count {
        let d = &table[i * DESCRIPTOR_LEN..(i + 1) * DESCRIPTOR_LEN];
        if d[4] == 0 {
            continue; // a free slot
        }
        let data_type = i32_at(d, 0);
        let id = u32_at(d, 5);
        let offset = unsigned(i64_at(d, 17), "object offset")?;
        let size = unsigned(i64_at(d, 25), "object size")?;
        if offset.checked_add(size).is_none_or(|end| end > file_len) {
            return Err(format!(
                "SIF object {id} (offset {offset}, {size} bytes) extends past the end of the file ({file_len} bytes)"
            ));
        }
        let extra = 73 + 128;
        let partition = (data_type == DATA_PARTITION).then(|| Partition {
            fs_type: i32_at(d, extra),
            part_type: i32_at(d, extra + 4),
            arch: bytes(d, extra + 8),
        });
        out.push(Descriptor {
            data_type,
            id,
            offset,
            size,
            partition,
        });
    }
    Ok(out)
}

/// The one descriptor `pick` accepts: "object not found" or "multiple
/// objects found" otherwise (sif's messages, which skopeo shows).
pub fn find_one(
    descriptors: &[Descriptor],
    pick: impl Fn(&Descriptor) -> bool,
) -> Result<Option<&Descriptor>, String> {
    let mut found = descriptors.iter().filter(|d| pick(d));
    let first = found.next();
    if first.is_some() && found.next().is_some() {
        return Err("multiple objects found".into());
    }
    Ok(first)
}

/// The primary system partition (what skopeo converts), if there is one.
pub fn primary_partition(descriptors: &[Descriptor]) -> Result<Option<&Descriptor>, String> {
    find_one(descriptors, |d| {
        d.partition
            .as_ref()
            .is_some_and(|p| p.part_type == PART_PRIMSYS)
    })
}

/// Go's architecture name for a SIF arch code (sif's `GetGoArch`), or
/// `unknown` (what sif answers for codes it does not know).
pub fn go_arch(code: &[u8; 3]) -> &'static str {
    match &code[..2] {
        b"01" => "386",
        b"02" => "amd64",
        b"03" => "arm",
        b"04" => "arm64",
        b"05" => "ppc64",
        b"06" => "ppc64le",
        b"07" => "mips",
        b"08" => "mipsle",
        b"09" => "mips64",
        b"10" => "mips64le",
        b"11" => "s390x",
        b"12" => "riscv64",
        _ => "unknown",
    }
}

/// The UUID as text (`8-4-4-4-12` lowercase hex), as `siftool` and skopeo print it.
pub fn uuid_string(id: &[u8; 16]) -> String {
    let h = hex::encode(id);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A SIF image: header, `n` descriptor slots, the given objects.
    pub(crate) fn sample(objects: &[(i32, i32, &[u8])]) -> Vec<u8> {
        let n = 4usize;
        let table = 4096usize;
        let mut data_at = table + n * DESCRIPTOR_LEN;
        let mut f = vec![0u8; data_at];
        f[32..42].copy_from_slice(MAGIC);
        f[42..45].copy_from_slice(VERSION);
        f[48..64].copy_from_slice(&[0xab; 16]);
        f[72..80].copy_from_slice(&1_700_000_000i64.to_le_bytes());
        f[88..96].copy_from_slice(&(n as i64).to_le_bytes());
        f[96..104].copy_from_slice(&(table as i64).to_le_bytes());
        f[104..112].copy_from_slice(&((n * DESCRIPTOR_LEN) as i64).to_le_bytes());
        for (i, (dt, pt, body)) in objects.iter().enumerate() {
            let d = table + i * DESCRIPTOR_LEN;
            f[d..d + 4].copy_from_slice(&dt.to_le_bytes());
            f[d + 4] = 1;
            f[d + 5..d + 9].copy_from_slice(&(i as u32 + 1).to_le_bytes());
            f[d + 17..d + 25].copy_from_slice(&(data_at as i64).to_le_bytes());
            f[d + 25..d + 33].copy_from_slice(&(body.len() as i64).to_le_bytes());
            let e = d + 73 + 128;
            f[e..e + 4].copy_from_slice(&FS_SQUASH.to_le_bytes());
            f[e + 4..e + 8].copy_from_slice(&pt.to_le_bytes());
            f[e + 8..e + 11].copy_from_slice(b"04\0");
            f.extend_from_slice(body);
            data_at += body.len();
        }
        f
    }

    fn parse(f: &[u8]) -> Result<Vec<Descriptor>, String> {
        let h = parse_header(f, f.len() as u64)?;
        let t = &f[h.descriptors_offset as usize..];
        parse_descriptors(t, h.descriptors_total, f.len() as u64)
    }

    #[test]
    fn reads_header_and_primary_partition() {
        let f = sample(&[
            (DATA_DEFFILE, 0, b"Bootstrap: x\n"),
            (DATA_PARTITION, PART_PRIMSYS, b"hsqs"),
        ]);
        let h = parse_header(&f, f.len() as u64).unwrap();
        assert_eq!(h.modified_at, 1_700_000_000);
        assert_eq!(uuid_string(&h.id), "abababab-abab-abab-abab-abababababab");
        let ds = parse(&f).unwrap();
        assert_eq!(ds.len(), 2);
        let p = primary_partition(&ds).unwrap().unwrap();
        assert_eq!(&f[p.offset as usize..(p.offset + p.size) as usize], b"hsqs");
        assert_eq!(go_arch(&p.partition.as_ref().unwrap().arch), "arm64");
    }

    #[test]
    fn bad_input_is_one_line_errors() {
        assert!(
            parse_header(b"short", 5)
                .unwrap_err()
                .contains("not a SIF file")
        );
        let mut f = sample(&[(DATA_PARTITION, PART_PRIMSYS, b"hsqs")]);
        // Object beyond the end.
        let d = 4096;
        f[d + 25..d + 33].copy_from_slice(&(1i64 << 40).to_le_bytes());
        assert!(parse(&f).unwrap_err().contains("extends past the end"));
        // Absurd descriptor count.
        f[88..96].copy_from_slice(&(i64::MAX).to_le_bytes());
        assert!(parse(&f).unwrap_err().contains("descriptors, more than"));
        // Negative offset.
        f[88..96].copy_from_slice(&(-1i64).to_le_bytes());
        assert!(parse(&f).unwrap_err().contains("negative"));
        // Truncated: table beyond the file.
        let f = sample(&[(DATA_PARTITION, PART_PRIMSYS, b"hsqs")]);
        assert!(
            parse(&f[..5000])
                .unwrap_err()
                .contains("past the end of the file")
        );
        // Two primary partitions.
        let f = sample(&[
            (DATA_PARTITION, PART_PRIMSYS, b"a"),
            (DATA_PARTITION, PART_PRIMSYS, b"b"),
        ]);
        assert_eq!(
            primary_partition(&parse(&f).unwrap()).unwrap_err(),
            "multiple objects found"
        );
        // None.
        let f = sample(&[(DATA_PARTITION, 1, b"a")]);
        assert!(primary_partition(&parse(&f).unwrap()).unwrap().is_none());
    }
}
