//! `core::password`: the PHC string parser on arbitrary text.

use chatbox_core::encoding::b64_encode;
use chatbox_core::password::{
    self, HASH_LEN, MAX_ITERATIONS, MAX_SALT_LEN, MIN_ITERATIONS, MIN_SALT_LEN, PasswordError,
    PhcHash,
};

/// `PhcHash::parse` on arbitrary text: what it accepts is within bounds and is the one
/// canonical spelling of what it holds; what it refuses, `verify_password` refuses the same
/// way (without hashing anything). Also the password policy on the same bytes.
pub fn phc_parse(data: &[u8]) {
    let _ = password::check_password_policy(data);
    let text = String::from_utf8_lossy(data);
    match PhcHash::parse(&text) {
        Ok(phc) => {
            let it = phc.iterations();
            assert!((MIN_ITERATIONS..=MAX_ITERATIONS).contains(&it));
            assert!((MIN_SALT_LEN..=MAX_SALT_LEN).contains(&phc.salt().len()));
            assert_eq!(phc.hash().len(), HASH_LEN);
            let _ = format!("{phc:?}");
            let mut salt = [0u8; 88];
            let mut hash = [0u8; 44];
            let salt = b64_encode(phc.salt(), &mut salt).expect("salt fits");
            let hash = b64_encode(phc.hash(), &mut hash).expect("hash fits");
            let canonical = format!("$pbkdf2-sha256$i={it},l=32${salt}${hash}");
            assert_eq!(canonical, text, "accepted a non-canonical PHC string");
        }
        Err(e) => {
            assert!(!matches!(e, PasswordError::InsufficientSize(_)));
            assert_eq!(password::verify_password(b"password", &text), Err(e));
        }
    }
}
