package auth

import (
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/lookoutfire/lookout/ingest"

	"golang.org/x/crypto/argon2"

	"github.com/lookoutfire/lookout/errs"
)

// ErrBadHash reports a stored hash this package cannot parse (a corrupted row or
// a foreign format); it is an internal fault, never the caller's.
var ErrBadHash = errors.New("auth: unparseable password hash")

// DefaultPBKDF2Iterations is what mosquitto_passwd (2.0) writes. Devices are
// verified once per connection and the result cached, so the count can be raised
// in config without hurting reconnect storms much.
const DefaultPBKDF2Iterations = 101

const (
	mosqSaltLen = 12 // mosquitto's SALT_LEN
	mosqHashLen = 64 // SHA-512 output
)

// MosquittoHash hashes an MQTT password in Mosquitto's PBKDF2-SHA512 format,
// "$7$<iterations>$<base64 salt>$<base64 hash>", so the one stored string serves
// the embedded broker and a generated Mosquitto password_file alike.
func MosquittoHash(password string, iterations int) (string, error) {
	salt := make([]byte, mosqSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("auth: salt: %w", err)
	}
	return mosquittoHashSalt(password, salt, iterations)
}

func mosquittoHashSalt(password string, salt []byte, iterations int) (string, error) {
	dk, err := pbkdf2.Key(sha512.New, password, salt, iterations, mosqHashLen)
	if err != nil {
		return "", fmt.Errorf("auth: pbkdf2: %w", err)
	}
	enc := base64.StdEncoding
	return "$7$" + strconv.Itoa(iterations) + "$" + enc.EncodeToString(salt) + "$" + enc.EncodeToString(dk), nil
}

// VerifyMosquitto reports whether password matches a "$7$" hash. A malformed
// hash is ErrBadHash (never a silent "no").
func VerifyMosquitto(encoded, password string) (bool, error) {
	parts := strings.Split(encoded, "$")
	// "", "7", iterations, salt, hash
	if len(parts) != 5 || parts[0] != "" || parts[1] != "7" {
		return false, ErrBadHash
	}
	iter, err := strconv.Atoi(parts[2])
	if err != nil || iter < 1 || iter > 10_000_000 {
		return false, ErrBadHash
	}
	salt, err1 := base64.StdEncoding.DecodeString(parts[3])
	want, err2 := base64.StdEncoding.DecodeString(parts[4])
	if err1 != nil || err2 != nil || len(salt) == 0 || len(want) != mosqHashLen {
		return false, ErrBadHash
	}
	got, err := pbkdf2.Key(sha512.New, password, salt, iter, mosqHashLen)
	if err != nil {
		return false, fmt.Errorf("auth: pbkdf2: %w", err)
	}
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// argon2id parameters for people's passwords: OWASP's 19 MiB / t=2 / p=1 keeps a
// login around tens of milliseconds on a small gateway while making offline
// guessing of a stolen database expensive.
const (
	argonTime    = 2
	argonMemory  = 19 * 1024
	argonThreads = 1
	argonKeyLen  = 32
	argonSaltLen = 16
)

// HashPassword hashes a person's password with argon2id in the PHC string format
// ($argon2id$v=19$m=…,t=…,p=…$salt$hash) so parameters can change later without
// invalidating stored hashes.
func HashPassword(password string) (string, error) {
	salt := make([]byte, argonSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("auth: salt: %w", err)
	}
	key := argon2.IDKey([]byte(password), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	enc := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads,
		enc.EncodeToString(salt), enc.EncodeToString(key)), nil
}

// VerifyPassword checks a password against a HashPassword string.
func VerifyPassword(encoded, password string) (bool, error) {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false, ErrBadHash
	}
	var v int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return false, ErrBadHash
	}
	var m, t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil || m == 0 || m > 1<<21 || t == 0 || t > 100 || p == 0 {
		return false, ErrBadHash
	}
	enc := base64.RawStdEncoding
	salt, err1 := enc.DecodeString(parts[4])
	want, err2 := enc.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(want) == 0 || len(want) > 128 {
		return false, ErrBadHash
	}
	got := argon2.IDKey([]byte(password), salt, t, m, p, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// RandomSecret returns n random bytes as unpadded URL-safe base64: passwords for
// devices and the bootstrap admin, session ids and API tokens.
func RandomSecret(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		// crypto/rand never fails on supported platforms (Go 1.24+ panics itself).
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// ValidUsername accepts 1-64 of A-Z a-z 0-9 . _ - starting with a letter or
// digit: the same alphabet as device ids, so names are safe as MQTT usernames,
// file lines (password/ACL files) and log fields.
func ValidUsername(s string) bool { return ingest.ValidDeviceID(s) }

// validPassword bounds a new password: long enough to resist guessing, short
// enough that hashing it is not a denial of service.
func validPassword(p string) error {
	if len(p) < 10 || len(p) > 256 {
		return fmt.Errorf("password must be 10-256 bytes: %w", errs.ErrInvalid)
	}
	return nil
}
