//! Capture-file records straight from the file's bytes: classic pcap (µs and ns, either byte order) and
//! pcapng (Section Header, Interface Description, Enhanced/Simple/obsolete Packet blocks, several sections),
//! without copying a packet. The reader maps the file and walks it with this; libpcap stays the reader for
//! standard input and for any format this does not know (it then behaves exactly as before).
//!
//! Damage is handled the way libpcap handles it, so a file reads the same either way: a record header or
//! body cut by the end of the file, or a capture length beyond what any link layer allows, ends the read
//! with an error (the records before it were read); a capture length beyond the file's snap length (but
//! sane) keeps the first snap-length bytes (libpcap's "Solaris BUFMOD" rule). pcapng follows the pcapng
//! specification (draft-ietf-opsawg-pcapng): block lengths are checked against the file and the 16 MiB
//! bound libpcap uses, `if_tsresol`/`if_tsoffset` convert timestamps, and every interface keeps its own
//! link type (libpcap refuses a file whose interfaces differ; here their packets carry their own).
//!
//! Nothing here trusts a length field: every slice is checked, arithmetic saturates, nothing panics.
use super::Timestamp;
use std::ops::Range;

/// libpcap's MAXIMUM_SNAPLEN: no link type iceview reads allows a larger packet; a larger capture length
/// is a damaged file.
pub(crate) const MAX_CAPLEN: u32 = 262_144;
/// libpcap's bound on a pcapng block (MAX_BLOCKSIZE): larger is a damaged file.
pub(crate) const MAX_BLOCK: u32 = 16 * 1024 * 1024;
/// Interfaces remembered per pcapng section (a hostile file could declare millions).
pub(crate) const MAX_INTERFACES: usize = 4096;

const PCAP_HEADER_LEN: usize = 24;
const PCAP_RECORD_LEN: usize = 16;
const SHB: u32 = 0x0A0D_0D0A;
const IDB: u32 = 0x0000_0001;
const OPB: u32 = 0x0000_0002;
const SPB: u32 = 0x0000_0003;
const EPB: u32 = 0x0000_0006;

/// One packet record: where its bytes are in the file, and what the record header said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub(crate) ts: Timestamp,
    pub(crate) orig_len: u32,
    /// The captured bytes, as a range of the file.
    pub data: Range<usize>,
    /// The link type (LINKTYPE_/DLT_ number) of the interface the packet was captured on.
    pub(crate) dlt: i32,
}

/// Why a read stopped early. The text follows libpcap's, so users and tests see the same words either way.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadError(pub String);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Endian {
    Little,
    Big,
}

impl Endian {
    fn u16(self, b: &[u8], at: usize) -> Option<u16> {
        let w: [u8; 2] = b.get(at..at.checked_add(2)?)?.try_into().ok()?;
        Some(match self {
            Endian::Little => u16::from_le_bytes(w),
            Endian::Big => u16::from_be_bytes(w),
        })
    }
    fn u32(self, b: &[u8], at: usize) -> Option<u32> {
        let w: [u8; 4] = b.get(at..at.checked_add(4)?)?.try_into().ok()?;
        Some(match self {
            Endian::Little => u32::from_le_bytes(w),
            Endian::Big => u32::from_be_bytes(w),
        })
    }
    fn u64(self, b: &[u8], at: usize) -> Option<u64> {
        let w: [u8; 8] = b.get(at..at.checked_add(8)?)?.try_into().ok()?;
        Some(match self {
            Endian::Little => u64::from_le_bytes(w),
            Endian::Big => u64::from_be_bytes(w),
        })
    }
}

#[derive(Clone, Copy, Debug)]
struct Interface {
    dlt: i32,
    snaplen: u32,
    /// Timestamp units per second (if_tsresol; 10^6 when absent).
    units: u64,
    /// if_tsoffset: seconds added to every timestamp.
    offset_secs: i64,
}

#[derive(Debug)]
enum Format {
    Pcap {
        endian: Endian,
        nanos: bool,
        snaplen: u32,
        dlt: i32,
    },
    PcapNg {
        endian: Endian,
        interfaces: Vec<Interface>,
    },
}

/// Walks a capture file's records. Construct with [`Savefile::open`] on the file's first bytes (or all of
/// them), then call [`Savefile::next`] with the whole file each time.
#[derive(Debug)]
pub struct Savefile {
    format: Format,
    /// Offset of the next record/block.
    pos: usize,
    done: bool,
}

impl Savefile {
    /// Recognises the file from its header. `None` when this is not a format read here (libpcap then
    /// reads it, or explains why not). For pcapng, the blocks up to the first interface are read so the
    /// link type is known, as libpcap does at open.
    pub fn open(file: &[u8]) -> Option<Savefile> {
        let magic = file.get(..4)?;
        let (endian, nanos) = match magic {
            [0xd4, 0xc3, 0xb2, 0xa1] => (Endian::Little, false),
            [0xa1, 0xb2, 0xc3, 0xd4] => (Endian::Big, false),
            [0x4d, 0x3c, 0xb2, 0xa1] => (Endian::Little, true),
            [0xa1, 0xb2, 0x3c, 0x4d] => (Endian::Big, true),
            [0x0a, 0x0d, 0x0d, 0x0a] => return Savefile::open_pcapng(file),
            _ => return None,
        };
        if file.len() < PCAP_HEADER_LEN || endian.u16(file, 4)? != 2 {
            // A short header or a version other than 2.x: libpcap's messages for those.
            return None;
        }
        // LT_LINKTYPE: the upper bits carry FCS information (pcap-common.h).
        let dlt = i32::try_from(endian.u32(file, 20)? & 0x03FF_FFFF).ok()?;
        let snaplen = match endian.u32(file, 16)? {
            // libpcap: a snap length of 0 or beyond the maximum means "the maximum".
            0 => MAX_CAPLEN,
            s if s > MAX_CAPLEN => MAX_CAPLEN,
            s => s,
        };
        Some(Savefile {
            format: Format::Pcap {
                endian,
                nanos,
                snaplen,
                dlt,
            },
            pos: PCAP_HEADER_LEN,
            done: false,
        })
    }

    fn open_pcapng(file: &[u8]) -> Option<Savefile> {
        let endian = match file.get(8..12)? {
            [0x1a, 0x2b, 0x3c, 0x4d] => Endian::Big,
            [0x4d, 0x3c, 0x2b, 0x1a] => Endian::Little,
            _ => return None,
        };
        if endian.u16(file, 12)? != 1 {
            return None;
        }
        let mut sf = Savefile {
            format: Format::PcapNg {
                endian,
                interfaces: Vec::new(),
            },
            pos: 0,
            done: false,
        };
        // Read blocks up to the first interface; a packet before it is a broken file: let libpcap say so.
        loop {
            match sf.block(file) {
                Step::Interface => break,
                Step::Skipped => continue,
                Step::Packet(_) | Step::End | Step::Error(_) => return None,
            }
        }
        Some(sf)
    }

    /// The link type of the file (pcap) or of its first interface (pcapng).
    pub(crate) fn dlt(&self) -> i32 {
        match &self.format {
            Format::Pcap { dlt, .. } => *dlt,
            Format::PcapNg { interfaces, .. } => interfaces.first().map_or(-1, |i| i.dlt),
        }
    }

    /// Offset of the next unread byte: everything before it has been handed out.
    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    /// The next packet record; `None` at the end of the file; an error ends the read.
    pub fn next(&mut self, file: &[u8]) -> Option<Result<Record, ReadError>> {
        if self.done {
            return None;
        }
        let step = match self.format {
            Format::Pcap { .. } => self.pcap_record(file),
            Format::PcapNg { .. } => loop {
                match self.block(file) {
                    Step::Interface | Step::Skipped => continue,
                    other => break other,
                }
            },
        };
        match step {
            Step::Packet(r) => Some(Ok(r)),
            Step::Error(e) => {
                self.done = true;
                Some(Err(e))
            }
            _ => {
                self.done = true;
                None
            }
        }
    }

    /// sf-pcap.c's pcap_next_packet, record by record.
    fn pcap_record(&mut self, file: &[u8]) -> Step {
        let Format::Pcap {
            endian,
            nanos,
            snaplen,
            dlt,
        } = self.format
        else {
            return Step::End;
        };
        let rest = file.len().saturating_sub(self.pos);
        if rest == 0 {
            return Step::End;
        }
        if rest < PCAP_RECORD_LEN {
            return Step::Error(ReadError(format!(
                "truncated dump file; tried to read {PCAP_RECORD_LEN} header bytes, only got {rest}"
            )));
        }
        let h = self.pos;
        let field = |i: usize| endian.u32(file, h + i).unwrap_or(0);
        let (secs, frac, caplen, orig_len) = (field(0), field(4), field(8), field(12));
        if caplen > MAX_CAPLEN {
            let what = if caplen > snaplen {
                format!("snaplen of {snaplen}")
            } else {
                format!("maximum of {MAX_CAPLEN}")
            };
            return Step::Error(ReadError(format!(
                "invalid packet capture length {caplen}, bigger than {what}"
            )));
        }
        let start = h + PCAP_RECORD_LEN;
        let have = file.len() - start;
        if (caplen as usize) > have {
            return Step::Error(ReadError(format!(
                "truncated dump file; tried to read {caplen} captured bytes, only got {have}"
            )));
        }
        self.pos = start + caplen as usize;
        // libpcap keeps the first snap-length bytes of a longer record and skips the rest.
        let kept = caplen.min(snaplen) as usize;
        let frac_nanos = if nanos {
            u64::from(frac)
        } else {
            u64::from(frac).saturating_mul(1000)
        };
        Step::Packet(Record {
            ts: timestamp(u64::from(secs), frac_nanos.min(999_999_999)),
            orig_len,
            data: start..start + kept,
            dlt,
        })
    }

    /// One pcapng block.
    fn block(&mut self, file: &[u8]) -> Step {
        let Format::PcapNg { endian, .. } = self.format else {
            return Step::End;
        };
        let start = self.pos;
        let rest = file.len().saturating_sub(start);
        if rest == 0 {
            return Step::End;
        }
        if rest < 12 {
            return Step::Error(ReadError(format!(
                "truncated pcapng dump file; tried to read 8 bytes, only got {rest}"
            )));
        }
        let typ = endian.u32(file, start).unwrap_or(0);
        // A Section Header Block may switch the byte order: its own length is read in its own order.
        let endian = if typ == SHB {
            match file.get(start + 8..start + 12) {
                Some([0x1a, 0x2b, 0x3c, 0x4d]) => Endian::Big,
                Some([0x4d, 0x3c, 0x2b, 0x1a]) => Endian::Little,
                _ => {
                    return Step::Error(ReadError(
                        "pcapng section header has a bad byte-order magic".into(),
                    ))
                }
            }
        } else {
            endian
        };
        let len = endian.u32(file, start + 4).unwrap_or(0);
        if len < 12 || len % 4 != 0 {
            return Step::Error(ReadError(format!("pcapng block has an invalid length {len}")));
        }
        if len > MAX_BLOCK {
            return Step::Error(ReadError(format!(
                "pcapng block size {len} is bigger than the maximum of {MAX_BLOCK}"
            )));
        }
        let len = len as usize;
        if len > rest {
            return Step::Error(ReadError(format!(
                "truncated pcapng dump file; tried to read {len} bytes, only got {rest}"
            )));
        }
        // The body: between the 8-byte header and the trailing copy of the length.
        let body = start + 8..start + len - 4;
        self.pos = start + len;
        match typ {
            SHB => {
                if endian.u16(file, body.start + 4) != Some(1) {
                    return Step::Error(ReadError(
                        "pcapng section has an unsupported major version".into(),
                    ));
                }
                self.format = Format::PcapNg {
                    endian,
                    interfaces: Vec::new(),
                };
                Step::Skipped
            }
            IDB => {
                let (Some(linktype), Some(snaplen)) =
                    (endian.u16(file, body.start), endian.u32(file, body.start + 4))
                else {
                    return Step::Error(ReadError(
                        "pcapng interface description block is too short".into(),
                    ));
                };
                let mut iface = Interface {
                    dlt: i32::from(linktype),
                    snaplen,
                    units: 1_000_000,
                    offset_secs: 0,
                };
                let options = file.get(body.start + 8..body.end).unwrap_or_default();
                for (code, value) in Options::new(endian, options) {
                    match (code, value) {
                        // if_tsresol: bit 7 clear → 10^-n, set → 2^-n seconds.
                        (9, [r, ..]) => {
                            let n = u32::from(r & 0x7f);
                            let units = if r & 0x80 == 0 {
                                10u64.checked_pow(n)
                            } else {
                                1u64.checked_shl(n)
                            };
                            match units {
                                Some(u) if u > 0 => iface.units = u,
                                _ => {
                                    return Step::Error(ReadError(format!(
                                        "pcapng interface has an unsupported time stamp resolution {r:#04x}"
                                    )))
                                }
                            }
                        }
                        // if_tsoffset: 64-bit signed seconds.
                        (14, v) if v.len() == 8 => {
                            #[allow(clippy::cast_possible_wrap)] // the two's-complement bits, read as u64
                            let secs = endian.u64(v, 0).unwrap_or(0) as i64;
                            iface.offset_secs = secs;
                        }
                        _ => {}
                    }
                }
                let Format::PcapNg { interfaces, .. } = &mut self.format else {
                    return Step::End;
                };
                if interfaces.len() >= MAX_INTERFACES {
                    return Step::Error(ReadError(format!(
                        "pcapng section declares more than {MAX_INTERFACES} interfaces"
                    )));
                }
                interfaces.push(iface);
                Step::Interface
            }
            EPB | OPB => {
                // EPB: interface id (32 bits); OPB: interface id (16) + drops (16). Then ts high, ts low,
                // captured length, original length, data.
                let iface_id = if typ == EPB {
                    endian.u32(file, body.start)
                } else {
                    endian.u16(file, body.start).map(u32::from)
                };
                let fields = (
                    iface_id,
                    endian.u32(file, body.start + 4),
                    endian.u32(file, body.start + 8),
                    endian.u32(file, body.start + 12),
                    endian.u32(file, body.start + 16),
                );
                let (Some(id), Some(hi), Some(lo), Some(caplen), Some(orig_len)) = fields else {
                    return Step::Error(ReadError("pcapng packet block is too short".into()));
                };
                let Some(iface) = self.interface(id) else {
                    return Step::Error(ReadError(format!(
                        "a pcapng packet block refers to interface {id}, which was not described"
                    )));
                };
                if caplen > MAX_CAPLEN {
                    return Step::Error(ReadError(format!(
                        "invalid packet capture length {caplen}, bigger than maximum of {MAX_CAPLEN}"
                    )));
                }
                let data_start = body.start + 20;
                let data_end = data_start + caplen as usize;
                if data_end > body.end {
                    return Step::Error(ReadError(format!(
                        "pcapng packet block claims {caplen} captured bytes in a {len}-byte block"
                    )));
                }
                let kept = if iface.snaplen > 0 {
                    caplen.min(iface.snaplen) as usize
                } else {
                    caplen as usize
                };
                Step::Packet(Record {
                    ts: iface.timestamp((u64::from(hi) << 32) | u64::from(lo)),
                    orig_len,
                    data: data_start..data_start + kept,
                    dlt: iface.dlt,
                })
            }
            SPB => {
                // Interface 0, no timestamp; the captured length is the original length cut by the snap
                // length (and by the block).
                let Some(iface) = self.interface(0) else {
                    return Step::Error(ReadError(
                        "a pcapng simple packet block comes before any interface".into(),
                    ));
                };
                let Some(orig_len) = endian.u32(file, body.start) else {
                    return Step::Error(ReadError("pcapng simple packet block is too short".into()));
                };
                let room = body.end.saturating_sub(body.start + 4);
                let mut caplen = (orig_len as usize).min(room);
                if iface.snaplen > 0 {
                    caplen = caplen.min(iface.snaplen as usize);
                }
                if caplen > MAX_CAPLEN as usize {
                    return Step::Error(ReadError(format!(
                        "invalid packet capture length {caplen}, bigger than maximum of {MAX_CAPLEN}"
                    )));
                }
                Step::Packet(Record {
                    ts: Timestamp(0),
                    orig_len,
                    data: body.start + 4..body.start + 4 + caplen,
                    dlt: iface.dlt,
                })
            }
            // Name resolution, statistics, journal, custom and unknown blocks carry no packets.
            _ => Step::Skipped,
        }
    }

    fn interface(&self, id: u32) -> Option<Interface> {
        match &self.format {
            Format::PcapNg { interfaces, .. } => interfaces.get(id as usize).copied(),
            Format::Pcap { .. } => None,
        }
    }
}

enum Step {
    Packet(Record),
    Interface,
    Skipped,
    End,
    Error(ReadError),
}

impl Interface {
    fn timestamp(&self, ticks: u64) -> Timestamp {
        let secs = ticks / self.units;
        let frac = ticks % self.units;
        // frac < units ≤ 2^63: the product fits in 128 bits.
        // frac < units, so this is below 10^9.
        let nanos =
            u64::try_from(u128::from(frac) * 1_000_000_000 / u128::from(self.units)).unwrap_or(u64::MAX);
        let secs = if self.offset_secs >= 0 {
            secs.saturating_add(self.offset_secs.unsigned_abs())
        } else {
            secs.saturating_sub(self.offset_secs.unsigned_abs())
        };
        timestamp(secs, nanos)
    }
}

fn timestamp(secs: u64, nanos: u64) -> Timestamp {
    Timestamp(secs.saturating_mul(1_000_000_000).saturating_add(nanos))
}

/// pcapng options: (code, value) until opt_endofopt or the end of the block; each value is padded to 32
/// bits. A length running past the block ends the walk.
struct Options<'a> {
    endian: Endian,
    bytes: &'a [u8],
}

impl<'a> Options<'a> {
    fn new(endian: Endian, bytes: &'a [u8]) -> Self {
        Options { endian, bytes }
    }
}

impl<'a> Iterator for Options<'a> {
    type Item = (u16, &'a [u8]);

    fn next(&mut self) -> Option<(u16, &'a [u8])> {
        let code = self.endian.u16(self.bytes, 0)?;
        let len = usize::from(self.endian.u16(self.bytes, 2)?);
        if code == 0 {
            return None;
        }
        let value = self.bytes.get(4..4 + len)?;
        let padded = (4 + len).div_ceil(4) * 4;
        self.bytes = self.bytes.get(padded..).unwrap_or_default();
        Some((code, value))
    }
}

#[cfg(test)]
// Test data: small literal values and lengths the test itself bounds.
#[allow(clippy::cast_possible_truncation)]
mod tests {
    use super::*;

    fn pcap_header(magic: u32, snaplen: u32, dlt: u32) -> Vec<u8> {
        let mut f = magic.to_le_bytes().to_vec();
        f.extend(2u16.to_le_bytes());
        f.extend(4u16.to_le_bytes());
        f.extend([0; 8]);
        f.extend(snaplen.to_le_bytes());
        f.extend(dlt.to_le_bytes());
        f
    }

    fn pcap_record(f: &mut Vec<u8>, secs: u32, frac: u32, data: &[u8], orig: u32) {
        for v in [secs, frac, data.len() as u32, orig] {
            f.extend(v.to_le_bytes());
        }
        f.extend(data);
    }

    fn all(file: &[u8]) -> (Vec<Record>, Option<ReadError>) {
        let mut sf = Savefile::open(file).expect("recognised");
        let mut out = Vec::new();
        while let Some(r) = sf.next(file) {
            match r {
                Ok(r) => out.push(r),
                Err(e) => return (out, Some(e)),
            }
        }
        (out, None)
    }

    #[test]
    fn pcap_microseconds_and_nanoseconds() {
        let mut f = pcap_header(0xa1b2c3d4, 65535, 1);
        pcap_record(&mut f, 10, 500_000, &[1, 2, 3], 60);
        let (recs, err) = all(&f);
        assert!(err.is_none());
        assert_eq!(recs.len(), 1);
        assert_eq!(recs[0].ts, Timestamp(10_500_000_000));
        assert_eq!(recs[0].orig_len, 60);
        assert_eq!(&f[recs[0].data.clone()], &[1, 2, 3]);
        assert_eq!(recs[0].dlt, 1);

        let mut f = pcap_header(0xa1b23c4d, 65535, 113);
        pcap_record(&mut f, 10, 123, &[9], 1);
        let (recs, _) = all(&f);
        assert_eq!(recs[0].ts, Timestamp(10_000_000_123));
        assert_eq!(recs[0].dlt, 113);
    }

    #[test]
    fn big_endian_pcap() {
        let mut f = vec![0xa1, 0xb2, 0xc3, 0xd4, 0, 2, 0, 4];
        f.extend([0; 8]);
        f.extend(65535u32.to_be_bytes());
        f.extend(1u32.to_be_bytes());
        for v in [7u32, 1, 2, 2] {
            f.extend(v.to_be_bytes());
        }
        f.extend([0xaa, 0xbb]);
        let (recs, err) = all(&f);
        assert!(err.is_none());
        assert_eq!(recs[0].ts, Timestamp(7_000_001_000));
        assert_eq!(&f[recs[0].data.clone()], &[0xaa, 0xbb]);
    }

    #[test]
    fn damaged_pcap_ends_like_libpcap() {
        let mut f = pcap_header(0xa1b2c3d4, 65535, 1);
        pcap_record(&mut f, 1, 0, &[1, 2, 3, 4], 4);
        let whole = f.clone();
        // Cut in the record header.
        f.extend([0; 5]);
        let (recs, err) = all(&f);
        assert_eq!(recs.len(), 1);
        assert_eq!(
            err,
            Some(ReadError(
                "truncated dump file; tried to read 16 header bytes, only got 5".into()
            ))
        );
        // Cut in the record body.
        let mut f = whole.clone();
        pcap_record(&mut f, 2, 0, &[1, 2, 3, 4], 4);
        f.truncate(f.len() - 3);
        let (recs, err) = all(&f);
        assert_eq!(recs.len(), 1);
        assert_eq!(
            err,
            Some(ReadError(
                "truncated dump file; tried to read 4 captured bytes, only got 1".into()
            ))
        );
        // An absurd capture length.
        let mut f = whole;
        for v in [3u32, 0, 0xFFFF_FFF0, 10] {
            f.extend(v.to_le_bytes());
        }
        let (recs, err) = all(&f);
        assert_eq!(recs.len(), 1);
        assert_eq!(
            err,
            Some(ReadError(
                "invalid packet capture length 4294967280, bigger than snaplen of 65535".into()
            ))
        );
    }

    #[test]
    fn caplen_beyond_snaplen_keeps_the_snaplen() {
        let mut f = pcap_header(0xa1b2c3d4, 2, 1);
        pcap_record(&mut f, 1, 0, &[1, 2, 3, 4], 4);
        pcap_record(&mut f, 2, 0, &[5], 1);
        let (recs, err) = all(&f);
        assert!(err.is_none());
        assert_eq!(recs.len(), 2);
        assert_eq!(&f[recs[0].data.clone()], &[1, 2]);
        assert_eq!(&f[recs[1].data.clone()], &[5]);
    }

    fn block(typ: u32, body: &[u8]) -> Vec<u8> {
        let len = (12 + body.len()).div_ceil(4) * 4;
        let mut b = typ.to_le_bytes().to_vec();
        b.extend((len as u32).to_le_bytes());
        b.extend(body);
        b.resize(len - 4, 0);
        b.extend((len as u32).to_le_bytes());
        b
    }

    fn shb() -> Vec<u8> {
        let mut body = 0x1A2B_3C4Du32.to_le_bytes().to_vec();
        body.extend(1u16.to_le_bytes());
        body.extend(0u16.to_le_bytes());
        body.extend((-1i64).to_le_bytes());
        block(SHB, &body)
    }

    fn idb(dlt: u16, snaplen: u32, options: &[u8]) -> Vec<u8> {
        let mut body = dlt.to_le_bytes().to_vec();
        body.extend([0, 0]);
        body.extend(snaplen.to_le_bytes());
        body.extend(options);
        block(IDB, &body)
    }

    fn epb(iface: u32, ticks: u64, data: &[u8], orig: u32) -> Vec<u8> {
        let mut body = iface.to_le_bytes().to_vec();
        body.extend(((ticks >> 32) as u32).to_le_bytes());
        body.extend((ticks as u32).to_le_bytes());
        body.extend((data.len() as u32).to_le_bytes());
        body.extend(orig.to_le_bytes());
        body.extend(data);
        block(EPB, &body)
    }

    #[test]
    fn pcapng_interfaces_resolutions_and_link_types() {
        let mut f = shb();
        f.extend(idb(1, 0, &[]));
        // Interface 1: nanosecond resolution (if_tsresol = 9), Linux SLL, offset +100 s.
        let mut opts = vec![9, 0, 1, 0, 9, 0, 0, 0];
        opts.extend([14, 0, 8, 0]);
        opts.extend(100i64.to_le_bytes());
        opts.extend([0, 0, 0, 0]);
        f.extend(idb(113, 0, &opts));
        f.extend(block(5, &[0; 8])); // interface statistics: skipped
        f.extend(epb(0, 1_500_000, &[1, 2, 3], 3));
        f.extend(epb(1, 2_000_000_007, &[4, 5, 6, 7, 8], 9));
        let (recs, err) = all(&f);
        assert!(err.is_none(), "{err:?}");
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[0].ts, Timestamp(1_500_000_000));
        assert_eq!(recs[0].dlt, 1);
        assert_eq!(&f[recs[0].data.clone()], &[1, 2, 3]);
        assert_eq!(recs[1].ts, Timestamp(102_000_000_007));
        assert_eq!(recs[1].dlt, 113);
        assert_eq!(recs[1].orig_len, 9);
        assert_eq!(&f[recs[1].data.clone()], &[4, 5, 6, 7, 8]);
    }

    #[test]
    fn pcapng_damage() {
        let mut f = shb();
        f.extend(idb(1, 0, &[]));
        f.extend(epb(0, 1, &[1], 1));
        let good = f.clone();
        // Unknown interface.
        f.extend(epb(3, 1, &[1], 1));
        let (recs, err) = all(&f);
        assert_eq!(recs.len(), 1);
        assert!(err.is_some_and(|e| e.0.contains("interface 3")));
        // Cut block.
        let mut f = good.clone();
        f.extend(&epb(0, 2, &[1, 2, 3, 4], 4)[..20]);
        let (recs, err) = all(&f);
        assert_eq!(recs.len(), 1);
        assert!(err.is_some_and(|e| e.0.starts_with("truncated pcapng")));
        // Captured length beyond the block.
        let mut f = good;
        let mut b = epb(0, 2, &[1, 2, 3, 4], 4);
        b[20..24].copy_from_slice(&1000u32.to_le_bytes());
        f.extend(b);
        let (recs, err) = all(&f);
        assert_eq!(recs.len(), 1);
        assert!(err.is_some());
        // A packet before any interface is not ours to explain: libpcap reads (and refuses) it.
        let mut f = shb();
        f.extend(epb(0, 1, &[1], 1));
        assert!(Savefile::open(&f).is_none());
    }
}
