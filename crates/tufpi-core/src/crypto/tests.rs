use ed25519_dalek::pkcs8::KeypairBytes;
use pkcs8::{EncodePrivateKey, LineEnding};

use super::encoding::py_fromhex;
use super::private::Inner;
use super::public::{rsa_public, verify_rsa_pss_sha256_auto, PublicKey};
use super::*;

const MSG: &[u8] = br#"{"signed":{"_type":"root","version":1}}"#;

// Made by securesystemslib 1.6 CryptoSigner.generate_* (private_bytes, keyval.public, sign()).
const ED_PRIV: &str = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIOm7flIeMo5I1G1b7KCfcZQlyaoOEeuCuY/IMZVk1rRQ\n-----END PRIVATE KEY-----\n";
const ED_PUB: &str = "b08aefbfb01eacdc446cbbb81b223ba0143dde6558fea1e3fb982185d38aebbb";
const ED_SIG: &str = "196f46c963e4309fc4e05e8c736fcfe27adbf7149f52e47265d207c739aee6d04ae5a4337a4dcbf956f305b8f2d5b79be497eaa276afc485ebc3d18f07403f0d";
const P256_PRIV: &str = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgorpaAWZwmD4iJeJN\n+CKw1zgajyqpUv7Rznab7Cd+P8ShRANCAAQGxh9YY+dooaRY6dR4gqErQuS4GukK\n5OTPcD2jlHPvJsaIx3+vcocSMbES1cn/W9LNvctpXsjwKaihjm39ZR68\n-----END PRIVATE KEY-----\n";
const P256_PUB: &str = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEBsYfWGPnaKGkWOnUeIKhK0LkuBrp\nCuTkz3A9o5Rz7ybGiMd/r3KHEjGxEtXJ/1vSzb3LaV7I8CmooY5t/WUevA==\n-----END PUBLIC KEY-----\n";
const P256_SIG: &str = "3046022100b5a2ed1da4450a3c2ff3f06643ec3f357a739c512d25ebdce19677e8537dc4f0022100dd30af15038f5dc91a55a712619c37c56a70abfde56f9ee5f4afa418bb764a8c";
const P256_SIG_LOW_S: &str = "3045022100b5a2ed1da4450a3c2ff3f06643ec3f357a739c512d25ebdce19677e8537dc4f0022022cf50e9fc70a237e5aa58ed9e63c83a52764eafc1a7ff9eff0a26aa40ecdac5";
const P384_PRIV: &str = "-----BEGIN PRIVATE KEY-----\nMIG2AgEAMBAGByqGSM49AgEGBSuBBAAiBIGeMIGbAgEBBDBUwxEeyZYUThMZkZG1\nZXLtN1iBGoZAspzdI2BuTyPBao/nZhwYOgD5XU/BHmFJmsOhZANiAARfMsDG+3eM\nT6FQMyw8RUQHl02wxvkmeA785gld2NRdurs9yH4oTrXUGdwFwzm87ZhVSHff//ZY\n3SkL0/Ihf8SuHg1MqF+kclpbYZNnDC+AO9vBT5Z+eyIQHSgJxllpnN8=\n-----END PRIVATE KEY-----\n";
const P384_PUB: &str = "-----BEGIN PUBLIC KEY-----\nMHYwEAYHKoZIzj0CAQYFK4EEACIDYgAEXzLAxvt3jE+hUDMsPEVEB5dNsMb5JngO\n/OYJXdjUXbq7Pch+KE611BncBcM5vO2YVUh33//2WN0pC9PyIX/Erh4NTKhfpHJa\nW2GTZwwvgDvbwU+WfnsiEB0oCcZZaZzf\n-----END PUBLIC KEY-----\n";
const P384_SIG: &str = "3065023100bf6aad9645460fbc1cf68d4ecd28f3d26b74dd6e756e893c898bb19ab72e5dc38d5d6050cabe13b3c47370108c05580802307832b9948f2387d89213a379a26853854208da63e3ffb59d82a289f8b2b81e54182356995bd0094b123c92b595d4f2ae";
const RSA_PRIV: &str = "-----BEGIN PRIVATE KEY-----\nMIIEvAIBADANBgkqhkiG9w0BAQEFAASCBKYwggSiAgEAAoIBAQDqEitl8sR13Dx3\n6/20jr1YKzlxy6JW4LitxvXEH/ErtQQQ5Idaq97SMOLrxbe3EhJjkZFyaKYLdYHl\nRf6AucBmUn7QhkqE/vAbM4RwnF8rRd4s5obIJduJet25O5R1IVZyRMrD2gB2ehaM\nsRaQ4d0J48JUNRxH423+qR1W4+w6PSHN3hK7rrS3CogLywTn2p/hvAPlEy/PnoFj\n85wKoateSNcqM32Jhe0/1wqEleSxw8DfE2jftGxIQXILjjC9oqsGaAaz2GRBX5Mr\nsh7Ey3YGKTzOCEGPMMDVc3W1Ubv7SbmHI+BJ5d5S/S2kzvimJ/BxNvMb3j1jmWm+\n5fDam4vRAgMBAAECgf923MMtAhrBvxT10OEEz3dXTpvdLYtCkts1Y9NpxM6zYzit\nW19gq+Z61lhlYgHo9URhS4qQjpPDPei4hNK4i5soWrwLKCavYsaLCZ43kTDCyLgK\nFQZcnNze84WkipzY3hUH8ecFja6ue1D4IPVUnV2hqAcGu/Ggj91LdJVxikxrRacy\nZwjfepAWLTJCyR1lYOJjGVbh5MbvhqoZFb96tbKo6rXXXtC90LWbWXbZHy8X03o3\nvYsY2HLz0UQxrCqxBWWz8mC1oBnClR6M1t7sOzhO6LsUkmsk5kAdAFKfUDj4IlpC\n49oSMhui3uf5eHRV2czDj/EqfHdylfeg53a/qUkCgYEA+yu9vnfDtyKgZj5CsRKE\nL1+eD7GEjjeO3atCUtzy9Op3hmvKRmYMDqrMATVgledj744dMlsnukwPDEyVCspi\nsr7Vb6DTLjnCOuDtP2UXWwSW7a5ecH18ujnGAMcrEPNykIcNlGYdKYW0b7CbqoDn\noVopvVxpcDdRhFyXqCI+UT8CgYEA7pJDUcDwCkBAOJJ9vdBthKmI1Lr5o+Y7wAf0\niwVlgI4tI+2Dfc+GxCamdzJ8IwtW0TrfDXvoLHmz75HNHVs/y4fhM1IHjeLSwGZr\nbaB8r5rq2P2XHHWCBJ0msL+bKIE69QWEWcA+ge7NlOekrQ0E9zvA/SzjzU2nkkEU\n/pKzzu8CgYAJZbWPrsNv0qfVq3arUVoIu7caNzYSbBm4SXQNzZ55c1xNdzL2N1M0\nKUfAs9KNST7/8308KRTvb3EQsLzSzoeq0GED8Cx2ikquEURPHuUkzqMm+WMnKkrE\nXOz/knQWCkW7CpKDft6QcyQxGZZ5ZqFD9C+jmhWH0UoHfb9e1wkl2QKBgQC3HLBr\nCYm0dIhWY6n7jQTidDXAAhsmP8rQo8qBAg1cVMQ09VKduDGaUIgoqSk6xLNIOMWH\nVfloWalQUjp7M9SNZafmeimuL9DPOE1wgWPybRegoVPg1hiLbguKUibHOhmEg02I\njdPsatyEVB/Da2DKWqTQLipTJC1gRm/UzckRJQKBgQCpG5pRTOzbUPKAowMSEJHH\nBCVCPdvR5No/F6sFblxqFGP0Izf4WH/l9mxpadgr+Ye2z5lBZqb6CK+RZi8iySTt\neauG75t10Oti/eMaKWL0TbWPhIgeGPotpSysYD4Hj0Y7XRXu64l3X+VSfti4/wiS\n7J0jwWfrDesOYd/yIB2zGw==\n-----END PRIVATE KEY-----\n";
const RSA_PUB: &str = "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA6hIrZfLEddw8d+v9tI69\nWCs5ccuiVuC4rcb1xB/xK7UEEOSHWqve0jDi68W3txISY5GRcmimC3WB5UX+gLnA\nZlJ+0IZKhP7wGzOEcJxfK0XeLOaGyCXbiXrduTuUdSFWckTKw9oAdnoWjLEWkOHd\nCePCVDUcR+Nt/qkdVuPsOj0hzd4Su660twqIC8sE59qf4bwD5RMvz56BY/OcCqGr\nXkjXKjN9iYXtP9cKhJXkscPA3xNo37RsSEFyC44wvaKrBmgGs9hkQV+TK7IexMt2\nBik8zghBjzDA1XN1tVG7+0m5hyPgSeXeUv0tpM74pifwcTbzG949Y5lpvuXw2puL\n0QIDAQAB\n-----END PUBLIC KEY-----\n";
const RSA_SIG: &str = "a93a6682394a8ec878d1a094f52fa79f69677b96d92fcf741619d3478d8f79638254a8ab98fe5ac7b6f0371c68778e7b464520597eca25e3da42c35b34a32056f30fb05fcdcad5d239ee7aa9cbaf2c2f5a1750ac7c1d3ce4aeea4f9e2be617ad7b53743f0a70f5ec9a8abf9d67314c4c2a78a38957c59a30146bfedeb2b28bcaa3b4fb1e72f43b88f9e2e53859d0cac86cbf5f7d10b58257a837ccee54f45f012d114a9a585cc50a9d25e82f4d762ccdcb6c30b0105079f7fb8ac314118055762b21a9cbcfa34081c1c0dbf30e7918781da995c8a61fc8274292981554f142884873ef6382b1361bf4c09894e4f75456d43c7be52e0f1e22bee386aa18a0e8ed";
const RSA_SIG_SALTMAX: &str = "897e22c10e5809ed1ba4c3174fdd7331d496c1856f8331a72e73130b9b87554123c431214f3f91ccaa7057d743cd922a7d382bedbee8cc038abf59ef7fb7da383a726ec2c733aafef8054ca42a6f7056811cfde9ea551cbccf1c8989177af6796caaa9361cba906df267c294140ed3196c25affb1a3a22887fd3e177125417bd87872c8748883041d1d7fbc7c1281f61447fd117b217ff979b9df205719acd3ecf1ab2927daa2ac0ca0b114038db8f007dfc4453fc65b1ae139d69be426861429f8da248f7154cc3e045a544535b1c4ad83cb3aeb4128ad90a2b8ab35fe781dbd4f8c81deba39c7c48143749ba12e7ea081a9634a4b0aafe7c32946cadf331c9";

const NP256: &str = "ecdsa-sha2-nistp256";
const NP384: &str = "ecdsa-sha2-nistp384";
const PSS: &str = "rsassa-pss-sha256";

fn v(keytype: &str, scheme: &str, public: &str, sig: &str) -> Result<(), CryptoError> {
    verify_signature(keytype, scheme, public, sig, MSG)
}

type Vector = (Scheme, &'static str, &'static str, &'static [&'static str]);
const VECTORS: [Vector; 4] = [
    (Scheme::Ed25519, ED_PRIV, ED_PUB, &[ED_SIG]),
    (
        Scheme::EcdsaP256,
        P256_PRIV,
        P256_PUB,
        &[P256_SIG, P256_SIG_LOW_S],
    ),
    (Scheme::EcdsaP384, P384_PRIV, P384_PUB, &[P384_SIG]),
    (
        Scheme::RsaPssSha256,
        RSA_PRIV,
        RSA_PUB,
        &[RSA_SIG, RSA_SIG_SALTMAX],
    ),
];

#[test]
fn scheme_names() {
    for s in Scheme::ALL {
        assert_eq!(Scheme::from_name(s.name()), Some(s));
        assert_eq!(s.to_string(), s.name());
    }
    let kts = Scheme::ALL.map(|s| s.keytype());
    assert_eq!(kts, ["ed25519", "ecdsa", "ecdsa", "rsa"]);
    assert_eq!(Scheme::from_name("rsassa-pss-sha512"), None);
}

#[test]
fn python_made_keys_and_signatures() {
    for (s, priv_pem, public, sigs) in VECTORS {
        let key = PrivateKey::from_pem(priv_pem).unwrap();
        assert_eq!(key.public_parts(), (s.keytype(), s.name(), public.into()));
        assert_eq!(
            key.to_pkcs8_pem().unwrap(),
            priv_pem,
            "as cryptography writes it"
        );
        for sig in sigs {
            v(s.keytype(), s.name(), public, sig).unwrap();
            let tampered = verify_signature(s.keytype(), s.name(), public, sig, b"other");
            assert_eq!(tampered, Err(CryptoError::BadSignature));
        }
    }
}

#[test]
fn round_trip_each_scheme() {
    for s in Scheme::ALL {
        let key = PrivateKey::generate(s).unwrap();
        let other = PrivateKey::generate(s).unwrap();
        let (kt, sc, public) = key.public_parts();
        assert_eq!((kt, sc, key.scheme()), (s.keytype(), s.name(), s));
        let sig = key.sign_hex(MSG).unwrap();
        v(kt, sc, &public, &sig).unwrap();
        let tampered = verify_signature(kt, sc, &public, &sig, b"tampered");
        assert_eq!(tampered, Err(CryptoError::BadSignature));
        // With RSA the signature can even be out of range for the other key's modulus.
        let wrong_key = v(kt, sc, &other.public_parts().2, &sig);
        assert!(
            matches!(
                wrong_key,
                Err(CryptoError::BadSignature | CryptoError::MalformedSignature(_))
            ),
            "{s}: {wrong_key:?}"
        );
        let reloaded = PrivateKey::from_pem(&key.to_pkcs8_pem().unwrap()).unwrap();
        assert_eq!(reloaded.public_parts(), key.public_parts());
    }
}

#[test]
fn keytypes_curves_and_encodings() {
    v(NP256, NP256, P256_PUB, P256_SIG).unwrap(); // legacy keytypes
    v(NP384, NP384, P384_PUB, P384_SIG).unwrap();
    for (kt, sc) in [
        (NP384, NP256),
        ("rsa", "ed25519"),
        ("ed25519", PSS),
        ("", ""),
    ] {
        let e = v(kt, sc, P256_PUB, P256_SIG).unwrap_err();
        assert!(
            matches!(&e, CryptoError::Unsupported { keytype, scheme } if keytype == kt && scheme == sc)
        );
    }
    let e = v("ecdsa", NP384, P256_PUB, P256_SIG).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("invalid public key: EC P-256 key does not fit scheme {NP384}")
    );
    assert!(v("ecdsa", NP256, P384_PUB, P384_SIG).is_err());
    assert!(v("ecdsa", NP256, RSA_PUB, P256_SIG).is_err());
    assert!(v("rsa", PSS, P256_PUB, RSA_SIG).is_err());
    let raw = p256::ecdsa::Signature::from_der(&hex::decode(P256_SIG).unwrap()).unwrap();
    let raw = hex::encode(raw.to_bytes()); // r||s, not DER
    assert!(matches!(
        v("ecdsa", NP256, P256_PUB, &raw),
        Err(CryptoError::MalformedSignature(_))
    ));
    // Hex like python's bytes.fromhex: any case, whitespace between byte pairs.
    let pairs: Vec<_> = ED_SIG
        .as_bytes()
        .chunks(2)
        .map(|c| c.to_ascii_uppercase())
        .collect();
    let spaced = format!(" {}\n", String::from_utf8(pairs.join(&b' ')).unwrap());
    v("ed25519", "ed25519", ED_PUB, &spaced).unwrap();
    for bad in ["a b", "abc", "zz", "é0", "0x00"] {
        assert!(matches!(
            py_fromhex(bad, "x"),
            Err(CryptoError::InvalidHex(_))
        ));
    }
}

#[test]
fn pem_parsing_like_cryptography() {
    let body: String = P256_PUB.lines().filter(|l| !l.starts_with("---")).collect();
    let one_line = format!("-----BEGIN PUBLIC KEY-----{body}-----END PUBLIC KEY-----");
    let crlf = P256_PUB.replace('\n', "\r\n");
    let no_newline = P256_PUB.trim_end().to_string();
    for pem in [crlf, no_newline, format!("x\n{P256_PUB}y"), one_line] {
        v("ecdsa", NP256, &pem, P256_SIG).unwrap();
    }
    for pem in [
        P256_PUB.replace('=', ""),
        P256_PUB.replace("PUBLIC KEY", "RSA PUBLIC KEY"),
        format!("{}{P256_PUB}", P256_PUB.replace("PUBLIC KEY", "FOO")),
        P256_PUB.replace("-----END PUBLIC KEY-----", ""),
    ] {
        assert!(v("ecdsa", NP256, &pem, P256_SIG).is_err(), "{pem}");
    }
}

#[test]
fn private_key_formats() {
    use rsa::pkcs1::{EncodeRsaPrivateKey, EncodeRsaPublicKey};
    let (lf, load) = (LineEnding::LF, |pem: &str| {
        PrivateKey::from_pem(pem).map(|k| k.public_parts().2)
    });
    let Inner::Ed25519(sk) = PrivateKey::from_pem(ED_PRIV).unwrap().inner else {
        panic!()
    };
    let public_key = Some(ed25519_dalek::pkcs8::PublicKeyBytes(
        sk.verifying_key().to_bytes(),
    ));
    let mut v2 = KeypairBytes {
        secret_key: sk.to_bytes(),
        public_key,
    };
    assert_eq!(load(&v2.to_pkcs8_pem(lf).unwrap()).unwrap(), ED_PUB); // PKCS#8 v2
    v2.public_key = Some(ed25519_dalek::pkcs8::PublicKeyBytes([9; 32]));
    assert!(
        load(&v2.to_pkcs8_pem(lf).unwrap()).is_err(),
        "mismatched v2 public key"
    );
    for (priv_pem, public) in [(P256_PRIV, P256_PUB), (P384_PRIV, P384_PUB)] {
        let sec1 = match PrivateKey::from_pem(priv_pem).unwrap().inner {
            Inner::P256(k) => p256::SecretKey::from(k).to_sec1_pem(lf).unwrap(),
            Inner::P384(k) => p384::SecretKey::from(k).to_sec1_pem(lf).unwrap(),
            _ => panic!(),
        };
        // As `openssl ecparam -genkey` writes it: EC PARAMETERS block first.
        let params =
            "-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n";
        assert_eq!(load(&format!("{params}{}", *sec1)).unwrap(), public);
    }
    let Inner::Rsa(rk) = PrivateKey::from_pem(RSA_PRIV).unwrap().inner else {
        panic!()
    };
    assert_eq!(load(&rk.to_pkcs1_pem(lf).unwrap()).unwrap(), RSA_PUB);
    // PKCS#1 "RSA PUBLIC KEY" verifies too, like load_pem_public_key.
    let pkcs1_public = rk.to_public_key().to_pkcs1_pem(lf).unwrap();
    v("rsa", PSS, &pkcs1_public, RSA_SIG).unwrap();

    let enc = "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----";
    let p521 =
        "-----BEGIN PRIVATE KEY-----\nMBICAQAwEAYHKoZIzj0CAQYFK4EEACM=\n-----END PRIVATE KEY-----";
    let corrupt = P256_PRIV.replace("MIGH", "MIGI");
    for pem in ["", "junk", P256_PUB, enc, p521, &corrupt] {
        assert!(load(pem).is_err(), "{pem}");
    }
    for (_, pem, _, _) in VECTORS {
        (0..pem.len() - 1)
            .step_by(5)
            .for_each(|end| assert!(load(&pem[..end]).is_err()));
    }
}

#[test]
fn garbage_never_panics() {
    let mut publics = vec![String::new(), "00".into(), "é".into(), "-----BEGIN ".into()];
    let mut sigs = publics.clone();
    for (_, _, public, vector_sigs) in VECTORS {
        for end in (0..public.len()).step_by(3) {
            publics.push(public[..end].to_string());
            publics.push(public[..end].to_string() + "\n-----END PUBLIC KEY-----\n");
        }
        for sig in vector_sigs {
            sigs.extend([sig[2..].to_string(), format!("00{sig}"), format!("{sig}00")]);
            for i in (0..sig.len()).step_by(7) {
                let flip = if &sig[i..i + 1] == "f" { "0" } else { "f" };
                sigs.push(format!("{}{flip}{}", &sig[..i], &sig[i + 1..]));
            }
        }
    }
    for s in Scheme::ALL {
        for (public, sig) in publics
            .iter()
            .flat_map(|p| sigs.iter().step_by(3).map(move |s| (p, s)))
        {
            assert!(v(s.keytype(), s.name(), public, sig).is_err());
        }
    }
    for sig in ["ff".repeat(256), "00".repeat(256), String::new()] {
        assert!(v("rsa", PSS, RSA_PUB, &sig).is_err());
    }
    let tiny: [(&[u8], &[u8]); 4] = [
        (&[1], &[1]),
        (&[9; 20], &[3]),
        (&[15; 40], &[1, 0, 1]),
        (&[16], &[3]),
    ];
    for (n, e) in tiny {
        if let Ok(PublicKey::Rsa { n, e }) = rsa_public(n, e) {
            assert!(verify_rsa_pss_sha256_auto(&n, &e, &[1, 2, 3], MSG).is_err());
        }
    }
}
