//! `ip("...")` matching: a single address, a range `a-b` or a CIDR, IPv4 or IPv6.
//!
//! Used by the `|= ip("10.0.0.0/8")` line filter (which looks for any address in the
//! line) and the `| addr = ip("...")` label filter (which checks the whole value).

use std::net::IpAddr;

/// A compiled `ip(...)` pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpMatcher {
    v6: bool,
    lo: u128,
    hi: u128,
}

fn to_u128(ip: IpAddr) -> (bool, u128) {
    match ip {
        IpAddr::V4(a) => (false, u128::from(u32::from(a))),
        IpAddr::V6(a) => (true, u128::from(a)),
    }
}

impl IpMatcher {
    /// Parses `1.2.3.4`, `1.2.3.4-1.2.3.9` or `10.0.0.0/8` (and IPv6 forms).
    pub fn parse(pattern: &str) -> Result<Self, String> {
        let p = pattern.trim();
        let bad = || format!("invalid ip pattern {p:?}");
        if let Some((addr, bits)) = p.split_once('/') {
            let ip: IpAddr = addr.trim().parse().map_err(|_| bad())?;
            let bits: u32 = bits.trim().parse().map_err(|_| bad())?;
            let (v6, v) = to_u128(ip);
            let width = if v6 { 128 } else { 32 };
            if bits > width {
                return Err(bad());
            }
            let host_bits = width - bits;
            let host_mask = if host_bits == 128 {
                u128::MAX
            } else {
                (1u128 << host_bits) - 1
            };
            Ok(IpMatcher {
                v6,
                lo: v & !host_mask,
                hi: v | host_mask,
            })
        } else if let Some((a, b)) = p.split_once('-') {
            let a: IpAddr = a.trim().parse().map_err(|_| bad())?;
            let b: IpAddr = b.trim().parse().map_err(|_| bad())?;
            let (v6a, lo) = to_u128(a);
            let (v6b, hi) = to_u128(b);
            if v6a != v6b || lo > hi {
                return Err(bad());
            }
            Ok(IpMatcher { v6: v6a, lo, hi })
        } else {
            let ip: IpAddr = p.parse().map_err(|_| bad())?;
            let (v6, v) = to_u128(ip);
            Ok(IpMatcher { v6, lo: v, hi: v })
        }
    }

    /// Whether `value` is an address inside the pattern.
    pub fn matches_value(&self, value: &str) -> bool {
        value
            .trim()
            .parse::<IpAddr>()
            .is_ok_and(|ip| self.contains(ip))
    }

    fn contains(&self, ip: IpAddr) -> bool {
        let (v6, v) = to_u128(ip);
        v6 == self.v6 && v >= self.lo && v <= self.hi
    }

    /// Whether any address-looking token in `line` is inside the pattern.
    pub fn matches_line(&self, line: &[u8]) -> bool {
        let is_ip_char = |b: u8| b.is_ascii_hexdigit() || b == b'.' || b == b':';
        let mut i = 0;
        while i < line.len() {
            if !is_ip_char(line[i]) {
                i += 1;
                continue;
            }
            let start = i;
            while i < line.len() && is_ip_char(line[i]) {
                i += 1;
            }
            let tok = &line[start..i];
            if let Ok(s) = std::str::from_utf8(tok) {
                let s = s.trim_matches(|c| c == '.' || c == ':');
                if s.parse::<IpAddr>().is_ok_and(|ip| self.contains(ip)) {
                    return true;
                }
                // `host:port` forms.
                if let Some((h, _)) = s.rsplit_once(':')
                    && h.parse::<IpAddr>().is_ok_and(|ip| self.contains(ip))
                {
                    return true;
                }
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_single_range_and_cidr() {
        let m = IpMatcher::parse("192.168.0.0/16").expect("cidr");
        assert!(m.matches_value("192.168.4.5"));
        assert!(!m.matches_value("192.169.0.1"));
        let r = IpMatcher::parse("192.168.0.1-192.189.10.12").expect("range");
        assert!(r.matches_value("192.170.0.1"));
        assert!(!r.matches_value("192.190.0.1"));
        let s = IpMatcher::parse("::1").expect("v6");
        assert!(s.matches_value("::1") && !s.matches_value("127.0.0.1"));
        assert!(IpMatcher::parse("300.1.1.1").is_err());
        assert!(IpMatcher::parse("1.1.1.1/40").is_err());
    }

    #[test]
    fn finds_addresses_in_lines() {
        let m = IpMatcher::parse("10.0.0.0/8").expect("cidr");
        assert!(m.matches_line(b"client=10.1.2.3:443 GET /"));
        assert!(m.matches_line(b"from 10.0.0.1."));
        assert!(!m.matches_line(b"from 11.0.0.1 to 1.10.0.0"));
    }
}
