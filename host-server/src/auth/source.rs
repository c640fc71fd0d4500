//! Where a login attempt comes from, as the limits see it: one "address" (IPv4 /32, IPv6 /64
//! by default: one host, or one IPv6 subnet an attacker gets for free) inside one "aggregate"
//! (IPv4 /24, IPv6 /48 by default: one network). Both widths are settings.

use core::fmt;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::config::Config;

/// An address masked to a prefix length: the key every per-address limit counts under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Net {
    ip: IpAddr,
    len: u8,
}

impl Net {
    /// `ip` (IPv4-mapped IPv6 taken as IPv4) masked to `v4` or `v6` bits (clamped to 32/128).
    #[must_use]
    pub(crate) fn of(ip: IpAddr, v4: u8, v6: u8) -> Net {
        match ip.to_canonical() {
            IpAddr::V4(a) => {
                let len = v4.min(32);
                let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
                Net {
                    ip: IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask)),
                    len,
                }
            }
            IpAddr::V6(a) => {
                let len = v6.min(128);
                let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
                Net {
                    ip: IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask)),
                    len,
                }
            }
        }
    }

    /// The masked address (the network's first address).
    #[must_use]
    pub(crate) fn ip(&self) -> IpAddr {
        self.ip
    }
}

impl fmt::Display for Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.ip, self.len)
    }
}

/// An attempt's address and aggregate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Origin {
    /// The address (`--address-prefix-v4`/`-v6` bits).
    pub(crate) addr: Net,
    /// The network around it (`--aggregate-prefix-v4`/`-v6` bits).
    pub(crate) aggregate: Net,
}

impl Origin {
    /// The origin of a connection from `ip` under `config`'s prefix lengths.
    #[must_use]
    pub(crate) fn of(ip: IpAddr, config: &Config) -> Origin {
        Prefixes::of(config).origin(ip)
    }
}

/// The four prefix lengths (`--address-prefix-v4/-v6`, `--aggregate-prefix-v4/-v6`): the one
/// masking every per-address limit uses (login throttle, hashing pool, anonymous eviction,
/// unconfirmed registrations; docs/DESIGN.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Prefixes {
    v4: u8,
    v6: u8,
    aggregate_v4: u8,
    aggregate_v6: u8,
}

impl Prefixes {
    /// `config`'s prefix lengths.
    #[must_use]
    pub(crate) fn of(config: &Config) -> Prefixes {
        Prefixes {
            v4: config.address_prefix_v4,
            v6: config.address_prefix_v6,
            aggregate_v4: config.aggregate_prefix_v4,
            aggregate_v6: config.aggregate_prefix_v6,
        }
    }

    /// The origin of a connection from `ip`.
    #[must_use]
    pub(crate) fn origin(self, ip: IpAddr) -> Origin {
        Origin {
            addr: Net::of(ip, self.v4, self.v6),
            aggregate: Net::of(ip, self.aggregate_v4, self.aggregate_v6),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_mask_v4_v6_and_mapped_addresses() {
        let v4: IpAddr = [192, 168, 7, 200].into();
        assert_eq!(Net::of(v4, 32, 64).to_string(), "192.168.7.200/32");
        assert_eq!(Net::of(v4, 24, 64).to_string(), "192.168.7.0/24");
        assert_eq!(Net::of(v4, 0, 64).to_string(), "0.0.0.0/0");
        assert_eq!(Net::of(v4, 99, 64), Net::of(v4, 32, 64));
        let v6: IpAddr = "2001:db8:1:2:3:4:5:6".parse().unwrap_or(v4);
        assert_eq!(Net::of(v6, 32, 64).to_string(), "2001:db8:1:2::/64");
        assert_eq!(Net::of(v6, 32, 48).to_string(), "2001:db8:1::/48");
        assert_eq!(Net::of(v6, 32, 128).to_string(), "2001:db8:1:2:3:4:5:6/128");
        let mapped: IpAddr = "::ffff:192.168.7.200".parse().unwrap_or(v6);
        assert_eq!(Net::of(mapped, 24, 64), Net::of(v4, 24, 64));
        // Two hosts of one /64 are one address; of one /24, two addresses in one aggregate.
        let other6: IpAddr = "2001:db8:1:2:ffff::1".parse().unwrap_or(v4);
        assert_eq!(Net::of(v6, 32, 64), Net::of(other6, 32, 64));
        let other4: IpAddr = [192, 168, 7, 1].into();
        assert_ne!(Net::of(v4, 32, 64), Net::of(other4, 32, 64));
        assert_eq!(Net::of(v4, 24, 48), Net::of(other4, 24, 48));
    }
}
