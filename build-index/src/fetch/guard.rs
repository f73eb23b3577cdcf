//! Which addresses a build may download from. A catalogue is input from elsewhere: without a
//! guard an image URL (or a redirect) could make the build machine fetch its cloud metadata
//! (169.254.169.254) or an intranet page and publish it as a thumbnail. The check runs in the
//! HTTP client's resolver, on the addresses it is about to connect to, for every request and
//! every redirect, so DNS cannot answer one thing to a check and another to the connection.

use std::cell::RefCell;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};

/// What kind of non-public address a host resolved to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AddressKind {
    /// 127.0.0.0/8, ::1.
    Loopback,
    /// 10/8, 172.16/12, 192.168/16.
    Private,
    /// 169.254/16 (cloud metadata lives here), fe80::/10.
    LinkLocal,
    /// fc00::/7.
    UniqueLocal,
    /// 100.64/10, used inside carriers' and clouds' networks.
    SharedNat,
    /// 0.0.0.0/8, ::.
    Unspecified,
    /// Multicast, broadcast, reserved (240/4) and documentation ranges.
    NotUnicast,
}

impl std::fmt::Display for AddressKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Loopback => "loopback",
            Self::Private => "private",
            Self::LinkLocal => "link-local",
            Self::UniqueLocal => "unique-local",
            Self::SharedNat => "shared (carrier NAT)",
            Self::Unspecified => "unspecified",
            Self::NotUnicast => "non-unicast",
        })
    }
}

fn v4_kind(ip: Ipv4Addr) -> Option<AddressKind> {
    let [a, b, ..] = ip.octets();
    Some(if ip.is_loopback() {
        AddressKind::Loopback
    } else if ip.is_private() {
        AddressKind::Private
    } else if ip.is_link_local() {
        AddressKind::LinkLocal
    } else if a == 100 && (64..128).contains(&b) {
        AddressKind::SharedNat
    } else if a == 0 {
        AddressKind::Unspecified
    } else if ip.is_multicast() || ip.is_broadcast() || ip.is_documentation() || a >= 240 {
        AddressKind::NotUnicast
    } else {
        return None;
    })
}

fn v6_kind(ip: Ipv6Addr) -> Option<AddressKind> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return v4_kind(v4);
    }
    let first = ip.segments()[0];
    Some(if ip.is_loopback() {
        AddressKind::Loopback
    } else if ip.is_unspecified() {
        AddressKind::Unspecified
    } else if first & 0xfe00 == 0xfc00 {
        AddressKind::UniqueLocal
    } else if first & 0xffc0 == 0xfe80 || first & 0xffc0 == 0xfec0 {
        AddressKind::LinkLocal
    } else if ip.is_multicast() {
        AddressKind::NotUnicast
    } else {
        return None;
    })
}

/// The kind of a non-public address; `None` for a public one.
pub(crate) fn non_public(ip: IpAddr) -> Option<AddressKind> {
    match ip {
        IpAddr::V4(v4) => v4_kind(v4),
        IpAddr::V6(v6) => v6_kind(v6),
    }
}

/// A host the guard refused, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    /// The address it resolved to.
    pub(crate) ip: IpAddr,
    /// What kind of address that is.
    pub(crate) kind: AddressKind,
}

thread_local! {
    /// The refusal of the last resolution on this thread (each request runs on one thread).
    static LAST: RefCell<Option<Refusal>> = const { RefCell::new(None) };
}

/// Takes the refusal the resolver recorded for this thread's last request, if it refused.
pub(crate) fn take_refusal() -> Option<Refusal> {
    LAST.with(|l| l.borrow_mut().take())
}

/// `ureq`'s resolver with the guard: only public addresses are returned (all of them when private
/// networks are allowed); a host with none is refused, and the refusal recorded for
/// [`take_refusal`].
pub(crate) struct GuardedResolver {
    /// Private networks allowed (`--allow-private-network`).
    pub(crate) allow_private: bool,
}

impl ureq::Resolver for GuardedResolver {
    fn resolve(&self, netloc: &str) -> std::io::Result<Vec<SocketAddr>> {
        LAST.with(|l| *l.borrow_mut() = None);
        let all: Vec<SocketAddr> = netloc.to_socket_addrs()?.collect();
        if self.allow_private {
            return Ok(all);
        }
        let public: Vec<SocketAddr> = all
            .iter()
            .copied()
            .filter(|a| non_public(a.ip()).is_none())
            .collect();
        if public.is_empty()
            && let Some(first) = all.first()
        {
            let kind = non_public(first.ip()).unwrap_or(AddressKind::NotUnicast);
            LAST.with(|l| {
                *l.borrow_mut() = Some(Refusal {
                    ip: first.ip(),
                    kind,
                })
            });
            return Err(std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                format!("{netloc} resolves to {} ({kind})", first.ip()),
            ));
        }
        Ok(public)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_unicast_addresses_pass() {
        let kind = |s: &str| non_public(s.parse().unwrap());
        assert_eq!(kind("127.0.0.1"), Some(AddressKind::Loopback));
        assert_eq!(kind("10.1.2.3"), Some(AddressKind::Private));
        assert_eq!(kind("172.31.0.1"), Some(AddressKind::Private));
        assert_eq!(kind("192.168.1.1"), Some(AddressKind::Private));
        assert_eq!(kind("169.254.169.254"), Some(AddressKind::LinkLocal));
        assert_eq!(kind("100.100.100.200"), Some(AddressKind::SharedNat));
        assert_eq!(kind("0.0.0.0"), Some(AddressKind::Unspecified));
        assert_eq!(kind("255.255.255.255"), Some(AddressKind::NotUnicast));
        assert_eq!(kind("::1"), Some(AddressKind::Loopback));
        assert_eq!(kind("fd00::1"), Some(AddressKind::UniqueLocal));
        assert_eq!(kind("fe80::1"), Some(AddressKind::LinkLocal));
        assert_eq!(kind("::ffff:127.0.0.1"), Some(AddressKind::Loopback));
        assert_eq!(kind("::ffff:169.254.169.254"), Some(AddressKind::LinkLocal));
        for public in [
            "93.184.216.34",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
        ] {
            assert_eq!(kind(public), None, "{public}");
        }
    }

    #[test]
    fn the_resolver_refuses_a_host_with_only_private_addresses_and_says_why() {
        use ureq::Resolver;
        let guarded = GuardedResolver {
            allow_private: false,
        };
        assert!(guarded.resolve("127.0.0.1:80").is_err());
        assert_eq!(
            take_refusal(),
            Some(Refusal {
                ip: "127.0.0.1".parse().unwrap(),
                kind: AddressKind::Loopback
            })
        );
        assert_eq!(take_refusal(), None, "taken once");
        let open = GuardedResolver {
            allow_private: true,
        };
        assert_eq!(open.resolve("127.0.0.1:80").unwrap().len(), 1);
    }
}
