//! The load generator's command line.

use std::collections::{HashMap, HashSet};

use crate::measure::{fail, Error};

/// The usage text.
pub const USAGE: &str = "usage:
  index_load pages --url http://HOST:PORT --paths FILE [--connections C] [--duration S]
                   [--warmup S] [--accept TYPE] [--seed N]
  index_load uploads --url http://HOST:PORT[,http://HOST2:PORT2...] --manifest FILE
                   [--path /legacy/] [--connections C] [--token TOKEN] [--watch]
                   [--watch-url URL] [--poll-ms MS] [--settle S] [--signed-timeout S]
                   [--watch2-url http://HOST:PORT/PREFIX [--watch2-header 'Name: value']
                    [--watch2-poll-ms MS]]
  (several URLs: upload i goes to URL i mod n; the watch reads --watch-url, else the first;
   --watch2-url: a second watch of PREFIX/timestamp.json etc. there, e.g. an S3 bucket's
   metadata/, reported as signed2)
manifest: one upload a line, tab-separated: FILE NAME VERSION FILETYPE PYVERSION";

/// The parsed command line: the load, `--key value` options and bare flags.
pub struct Args {
    /// `pages` or `uploads`.
    pub cmd: String,
    kv: HashMap<String, String>,
    flags: HashSet<String>,
}

impl Args {
    /// The command line of this process.
    pub fn parse() -> Result<Args, Error> {
        let mut it = std::env::args().skip(1);
        let cmd = it.next().ok_or_else(|| fail(USAGE))?;
        let mut kv = HashMap::new();
        let mut flags = HashSet::new();
        while let Some(a) = it.next() {
            let Some(k) = a.strip_prefix("--") else {
                return Err(fail(format!("unexpected argument {a}\n{USAGE}")));
            };
            if k == "watch" {
                flags.insert(k.to_string());
                continue;
            }
            let v = it
                .next()
                .ok_or_else(|| fail(format!("--{k} needs a value")))?;
            kv.insert(k.to_string(), v);
        }
        Ok(Args { cmd, kv, flags })
    }

    /// Option `--k`, which must be given.
    pub fn req(&self, k: &str) -> Result<String, Error> {
        self.kv
            .get(k)
            .cloned()
            .ok_or_else(|| fail(format!("--{k} is required\n{USAGE}")))
    }

    /// Option `--k` as a number, `default` if not given.
    pub fn num<T: std::str::FromStr>(&self, k: &str, default: T) -> Result<T, Error> {
        match self.kv.get(k) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| fail(format!("--{k}: bad value {v}"))),
        }
    }

    /// Option `--k`, if given.
    pub fn opt(&self, k: &str) -> Option<String> {
        self.kv.get(k).cloned()
    }

    /// Whether bare flag `--k` is given.
    pub fn flag(&self, k: &str) -> bool {
        self.flags.contains(k)
    }
}
