//! The root user's credential: IoTDB's default root/root until `ALTER USER root SET PASSWORD`
//! changes it, then a salted PBKDF2-HMAC-SHA256 hash in `<dn_system_dir>/users` (written to a
//! temporary file, fsynced and renamed, so a crash leaves the old or the new password, never a
//! broken file).
//!
//! The password is this instance's: like IoTDB's pipes with their default inclusion, a pipe does
//! not carry it to the peer. Operators change it on both instances of a pair, and the pipes that
//! log in with it (`sink.password`) with ALTER PIPE.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use duet_common::{Status, StatusCode};

/// The one user, and its password until changed.
pub const ROOT: &str = "root";
const DEFAULT_PASSWORD: &str = "root";
const FILE: &str = "users";
const SCHEME: &str = "pbkdf2-sha256";
/// Tens of milliseconds per login: slow for guessing, unnoticed by a client (which logs in once
/// per session).
const ITERATIONS: u32 = 100_000;

/// A stored password: salt, iterations, derived key.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Credential {
    salt: [u8; 16],
    iterations: u32,
    key: [u8; 32],
}

impl Credential {
    fn derive(password: &str, salt: [u8; 16], iterations: u32) -> Credential {
        let mut key = [0u8; 32];
        pbkdf2::pbkdf2_hmac::<sha2::Sha256>(password.as_bytes(), &salt, iterations, &mut key);
        Credential { salt, iterations, key }
    }

    fn matches(&self, password: &str) -> bool {
        let other = Credential::derive(password, self.salt, self.iterations);
        // Constant time: the comparison does not tell how much of the key matched.
        self.key.iter().zip(other.key.iter()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
    }

    fn to_line(&self) -> String {
        format!("{ROOT} {SCHEME}${}${}${}\n", self.iterations, hex(&self.salt), hex(&self.key))
    }

    fn parse_line(line: &str) -> Option<(String, Credential)> {
        let (user, rest) = line.trim().split_once(' ')?;
        let mut parts = rest.split('$');
        if parts.next()? != SCHEME {
            return None;
        }
        let iterations = parts.next()?.parse().ok().filter(|i| *i > 0)?;
        let salt = unhex(parts.next()?)?.try_into().ok()?;
        let key = unhex(parts.next()?)?.try_into().ok()?;
        parts.next().is_none().then(|| (user.to_string(), Credential { salt, iterations, key }))
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() & 1 == 1 {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}

fn random_salt() -> Result<[u8; 16], Status> {
    let mut salt = [0u8; 16];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut salt))
        .map_err(|e| Status::new(StatusCode::InternalServerError, format!("cannot read /dev/urandom for a password salt: {e}")))?;
    Ok(salt)
}

/// The users of this instance (root only) and their passwords.
#[derive(Debug)]
pub struct Users {
    dir: PathBuf,
    /// None: root's password is still IoTDB's default.
    root: Mutex<Option<Credential>>,
}

impl Users {
    /// Loads the stored password from `system_dir`; a file that cannot be read fails the start
    /// (naming it) rather than falling back to the default password.
    pub fn load(system_dir: &Path) -> Result<Users, String> {
        let path = system_dir.join(FILE);
        let root = match fs::read_to_string(&path) {
            Ok(text) => {
                let mut root = None;
                for line in text.lines().filter(|l| !l.trim().is_empty() && !l.starts_with('#')) {
                    match Credential::parse_line(line) {
                        Some((user, c)) if user == ROOT => root = Some(c),
                        _ => return Err(format!("{} is damaged (line '{line}'): restore it from a backup, or delete it to go back to the default root password", path.display())),
                    }
                }
                root
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        Ok(Users { dir: system_dir.to_path_buf(), root: Mutex::new(root) })
    }

    /// Whether `user` may log in with `password`.
    pub fn check(&self, user: &str, password: &str) -> bool {
        if user != ROOT {
            return false;
        }
        // Derived outside the lock: logins (and peers' pipe handshakes) do not queue behind one
        // another.
        let stored = self.root.lock().unwrap_or_else(|p| p.into_inner()).clone();
        match stored {
            Some(c) => c.matches(password),
            None => password == DEFAULT_PASSWORD,
        }
    }

    /// The users, for LIST USER.
    pub fn list(&self) -> Vec<String> {
        vec![ROOT.to_string()]
    }

    /// ALTER USER `user` SET PASSWORD `password`: durable before it returns.
    pub fn set_password(&self, user: &str, password: &str) -> Result<(), Status> {
        if user != ROOT {
            return Err(Status::new(StatusCode::UserNotExist, format!("User {user} does not exist: DuetDB has the root user only")));
        }
        if password.chars().count() < 4 || password.chars().count() > 64 || password.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(Status::new(
                StatusCode::IllegalParameter,
                "the password must be 4 to 64 characters long, without spaces or control characters",
            ));
        }
        let c = Credential::derive(password, random_salt()?, ITERATIONS);
        let mut root = self.root.lock().unwrap_or_else(|p| p.into_inner());
        self.store(&c).map_err(|e| Status::new(StatusCode::InternalServerError, format!("cannot store the new password: {e}; the old one still holds")))?;
        *root = Some(c);
        tracing::info!(user, "password changed");
        Ok(())
    }

    fn store(&self, c: &Credential) -> std::io::Result<()> {
        let tmp = self.dir.join(format!("{FILE}.tmp"));
        {
            let mut opts = fs::OpenOptions::new();
            opts.write(true).create(true).truncate(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
            let mut f = opts.open(&tmp)?;
            f.write_all(b"# The root password's salted hash (ALTER USER root SET PASSWORD). Do not edit.\n")?;
            f.write_all(c.to_line().as_bytes())?;
            f.sync_all()?;
        }
        fs::rename(&tmp, self.dir.join(FILE))?;
        fs::File::open(&self.dir)?.sync_all()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_then_changed_password_persists_hashed() {
        let d = tempfile::tempdir().unwrap();
        let u = Users::load(d.path()).unwrap();
        assert!(u.check("root", "root") && !u.check("root", "x") && !u.check("admin", "root"));
        assert_eq!(u.set_password("root", "abc").unwrap_err().code, StatusCode::IllegalParameter);
        assert_eq!(u.set_password("root", "has space").unwrap_err().code, StatusCode::IllegalParameter);
        assert_eq!(u.set_password("bob", "secret1").unwrap_err().code, StatusCode::UserNotExist);
        assert!(u.check("root", "root"), "refused changes leave the password");
        u.set_password("root", "s3cret-pw").unwrap();
        assert!(u.check("root", "s3cret-pw") && !u.check("root", "root"));
        let text = fs::read_to_string(d.path().join(FILE)).unwrap();
        assert!(!text.contains("s3cret-pw") && text.contains(SCHEME), "{text}");
        // Reloaded, as after a restart.
        let again = Users::load(d.path()).unwrap();
        assert!(again.check("root", "s3cret-pw") && !again.check("root", "root"));
        // A second change gets a fresh salt.
        again.set_password("root", "s3cret-pw").unwrap();
        assert_ne!(fs::read_to_string(d.path().join(FILE)).unwrap(), text);
        // A damaged file stops the start instead of reopening the default password.
        fs::write(d.path().join(FILE), "root pbkdf2-sha256$20000$zz$00\n").unwrap();
        let e = Users::load(d.path()).unwrap_err();
        assert!(e.contains("damaged"), "{e}");
    }
}
