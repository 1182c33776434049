//! The IPv6 extension header chain (RFC 8200 §4.1): Hop-by-Hop, Routing and Destination Options, the
//! Authentication Header (RFC 4302), and the Fragment header (§4.5), where the walk stops when it fragments
//! the payload; an atomic fragment (RFC 6946) is walked past like any other header. Each header is parsed by
//! etherparse; the walk is ours because etherparse's `Ipv6ExtensionsSlice` would carry on into bytes that
//! are only part of the fragmentable part. It does not reassemble (`defrag` does) nor interpret options.
use etherparse::err::ip_auth::HeaderSliceError as AuthError;
use etherparse::{IpAuthHeaderSlice, Ipv6FragmentHeaderSlice, Ipv6RawExtHeaderSlice};

use super::{IPPROTO_AH, IPPROTO_DSTOPTS, IPPROTO_FRAGMENT, IPPROTO_HOPOPTS, IPPROTO_ROUTING};

/// A fragmenting IPv6 Fragment header's fields.
#[derive(Clone, Copy, Debug)]
pub(super) struct Ipv6Fragment {
    pub(super) offset: usize,
    pub(super) more: bool,
    pub(super) id: u32,
}

/// The result of walking an IPv6 extension header chain.
pub(super) struct Ipv6Walk<'a> {
    /// The first header that is not an extension header we walk (or, with `fragment`, the Fragment
    /// header's Next Header).
    pub(super) protocol: u8,
    /// What follows the walked headers: the upper-layer packet, or the fragment's data.
    pub(super) payload: &'a [u8],
    /// Bytes of extension headers walked.
    pub(super) consumed: usize,
    /// Set when a Fragment header fragments the payload: the walk stops there, since what follows is only
    /// a piece of the fragmentable part.
    pub(super) fragment: Option<Ipv6Fragment>,
}

pub(super) enum ExtError {
    Short,
    Bad,
}

/// Walks the IPv6 extension headers (RFC 8200 §4.1) starting at `next` over `bytes`. etherparse's
/// `Ipv6ExtensionsSlice` would carry on past a fragmenting Fragment header into bytes that are only part of
/// the fragmentable part, so the walk is ours, with etherparse parsing each header.
pub(super) fn walk_ipv6_extensions(mut next: u8, bytes: &[u8]) -> Result<Ipv6Walk<'_>, ExtError> {
    let mut rest = bytes;
    // Each header is at least 8 bytes, so the loop ends when the bytes do.
    loop {
        let (len, following) = match next {
            IPPROTO_HOPOPTS | IPPROTO_ROUTING | IPPROTO_DSTOPTS => {
                let ext = Ipv6RawExtHeaderSlice::from_slice(rest).map_err(|_| ExtError::Short)?;
                (ext.slice().len(), ext.next_header().0)
            }
            IPPROTO_AH => {
                let ext = IpAuthHeaderSlice::from_slice(rest).map_err(|e| match e {
                    AuthError::Len(_) => ExtError::Short,
                    AuthError::Content(_) => ExtError::Bad,
                })?;
                (ext.slice().len(), ext.next_header().0)
            }
            IPPROTO_FRAGMENT => {
                let frag = Ipv6FragmentHeaderSlice::from_slice(rest).map_err(|_| ExtError::Short)?;
                let len = frag.slice().len();
                if frag.is_fragmenting_payload() {
                    let payload = rest.get(len..).ok_or(ExtError::Short)?;
                    return Ok(Ipv6Walk {
                        protocol: frag.next_header().0,
                        payload,
                        consumed: bytes.len() - payload.len(),
                        fragment: Some(Ipv6Fragment {
                            offset: usize::from(frag.fragment_offset().byte_offset()),
                            more: frag.more_fragments(),
                            id: frag.identification(),
                        }),
                    });
                }
                // RFC 6946: an atomic fragment (offset 0, M = 0) is processed as an unfragmented packet.
                (len, frag.next_header().0)
            }
            _ => break,
        };
        rest = rest.get(len..).ok_or(ExtError::Short)?;
        next = following;
    }
    Ok(Ipv6Walk {
        protocol: next,
        payload: rest,
        consumed: bytes.len() - rest.len(),
        fragment: None,
    })
}
