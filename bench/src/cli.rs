//! The benchmarks' command lines: `--flag [value]` pairs after the program name.

use crate::measure::Error;

/// Go through the command-line arguments: `on(flag, value)` handles each flag, taking its
/// value with `value()` if it has one, and says whether it knew the flag. `-h`/`--help`
/// prints `usage` and exits; an unknown flag or a missing value is an error naming it.
pub fn parse_flags(
    usage: &str,
    mut on: impl FnMut(&str, &mut dyn FnMut() -> Result<String, Error>) -> Result<bool, Error>,
) -> Result<(), Error> {
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == "-h" || a == "--help" {
            println!("{usage}");
            std::process::exit(0);
        }
        let mut value = || {
            args.next()
                .ok_or_else(|| Error::from(format!("{a} needs a value\n{usage}")))
        };
        if !on(&a, &mut value)? {
            return Err(format!("unknown argument {a}\n{usage}").into());
        }
    }
    Ok(())
}
