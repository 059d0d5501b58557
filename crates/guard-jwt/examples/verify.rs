//! Verifies a token against the keys of a JWKS file and prints the verdict.
//!
//! ```text
//! cargo run -p guard-jwt --example verify -- JWKS_FILE TOKEN [--issuer ISS] [--audience AUD]
//! ```
//!
//! Exits 0 and prints identity, roles and expiry for a valid token; exits 1 with the reason
//! otherwise, 2 on bad arguments or an unusable JWKS file. `TOKEN` may be `-` to read it from
//! standard input.
//!
//! A JWKS and an RS256 token made with OpenSSL from the test key, to try it:
//!
//! ```text
//! key=crates/guard-jwt/tests/keys/rsa2048.pkcs8.pem
//! b64u() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }
//! n=$(openssl rsa -in $key -noout -modulus | cut -d= -f2 | xxd -r -p | b64u)
//! echo '{"keys":[{"kty":"RSA","kid":"demo","n":"'$n'","e":"AQAB"}]}' > /tmp/jwks.json
//! h=$(printf '{"alg":"RS256","kid":"demo"}' | b64u)
//! c=$(printf '{"sub":"alice","scope":"proxy:stream","exp":%d}' $(($(date +%s) + 120)) | b64u)
//! s=$(printf %s "$h.$c" | openssl dgst -sha256 -sign $key | b64u)
//! cargo run -p guard-jwt --example verify -- /tmp/jwks.json "$h.$c.$s"
//! ```

use std::io::Read;
use std::process::ExitCode;
use std::time::SystemTime;

use guard_jwt::{JwtGuard, JwtOptions, KeySource};

const USAGE: &str = "usage: verify JWKS_FILE TOKEN|- [--issuer ISS] [--audience AUD]";

fn main() -> ExitCode {
    let options = match parse_args(std::env::args().skip(1)) {
        Ok(parsed) => parsed,
        Err(message) => {
            eprintln!("{message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let (options, token) = options;
    let guard = match JwtGuard::new(options) {
        Ok(guard) => guard,
        Err(err) => {
            eprintln!("{err}");
            return ExitCode::from(2);
        }
    };
    let now = SystemTime::now();
    match guard.verify(token.trim(), now) {
        Ok(verified) => {
            let left = verified
                .expires_at
                .duration_since(now)
                .map_or(0, |left| left.as_secs());
            println!("valid");
            println!(
                "  identity: {}",
                verified.identity.as_deref().unwrap_or("(none)")
            );
            println!("  roles:    {}", verified.roles.join(" "));
            println!("  expires:  in {left} s");
            if let Some(challenge_at) = verified.challenge_at {
                let due = challenge_at.duration_since(now).map_or(0, |d| d.as_secs());
                println!("  challenge: in {due} s");
            }
            ExitCode::SUCCESS
        }
        Err(err) => {
            println!("refused: {err}");
            ExitCode::from(1)
        }
    }
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<(JwtOptions, String), String> {
    let jwks = args.next().ok_or("no JWKS file given")?;
    let token = match args.next().ok_or("no token given")?.as_str() {
        "-" => {
            let mut token = String::new();
            std::io::stdin()
                .read_to_string(&mut token)
                .map_err(|err| format!("cannot read the token from stdin: {err}"))?;
            token
        }
        token => token.to_owned(),
    };
    let mut options = JwtOptions::new(KeySource::File(jwks.into()));
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--issuer" => options.issuer = Some(value),
            "--audience" => options.audience = Some(value),
            _ => return Err(format!("unknown argument {flag:?}")),
        }
    }
    Ok((options, token))
}
