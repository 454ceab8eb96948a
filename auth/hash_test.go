package auth

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestVerifyMosquittoPasswdOutput checks hashes written by mosquitto_passwd
// itself: a stored line (testdata, from mosquitto 2.0.11) and a fresh one.
func TestVerifyMosquittoPasswdOutput(t *testing.T) {
	b, err := os.ReadFile("testdata/mosquitto_passwd.txt")
	if err != nil {
		t.Fatal(err)
	}
	_, hash, _ := strings.Cut(strings.TrimSpace(string(b)), ":")
	for _, c := range []struct {
		pw   string
		want bool
	}{{"secret", true}, {"Secret", false}, {"", false}} {
		ok, err := VerifyMosquitto(hash, c.pw)
		if err != nil || ok != c.want {
			t.Fatalf("VerifyMosquitto(%q) = %v, %v", c.pw, ok, err)
		}
	}
	bin, err := exec.LookPath("mosquitto_passwd")
	if err != nil {
		t.Fatalf("mosquitto_passwd not installed: %v", err)
	}
	f := filepath.Join(t.TempDir(), "pw")
	if out, err := exec.Command(bin, "-c", "-b", f, "dev-1", "pa:ss wörd").CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	b, _ = os.ReadFile(f)
	_, hash, _ = strings.Cut(strings.TrimSpace(string(b)), ":")
	if ok, err := VerifyMosquitto(hash, "pa:ss wörd"); err != nil || !ok {
		t.Fatalf("fresh mosquitto_passwd hash: %v %v", ok, err)
	}
}

func TestMosquittoHashRoundTrip(t *testing.T) {
	h, err := MosquittoHash("s3cret-device", 1000)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$7$1000$") {
		t.Fatalf("format %q", h)
	}
	if ok, _ := VerifyMosquitto(h, "s3cret-device"); !ok {
		t.Fatal("own hash does not verify")
	}
	if ok, _ := VerifyMosquitto(h, "s3cret-devicE"); ok {
		t.Fatal("wrong password verified")
	}
	for _, bad := range []string{"", "$6$1$a$b", "$7$x$AAAA$AAAA", "$7$0$AAAA$AAAA", "$7$10$!!$AAAA", "$7$10$AAAA$AAAA", "plain"} {
		if _, err := VerifyMosquitto(bad, "x"); err != ErrBadHash {
			t.Errorf("VerifyMosquitto(%q) err = %v, want ErrBadHash", bad, err)
		}
	}
}

func TestArgon2idRoundTrip(t *testing.T) {
	h, err := HashPassword("correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("format %q", h)
	}
	if ok, err := VerifyPassword(h, "correct horse battery"); !ok || err != nil {
		t.Fatal("does not verify", err)
	}
	if ok, _ := VerifyPassword(h, "correct horse batterY"); ok {
		t.Fatal("wrong password verified")
	}
	if _, err := VerifyPassword("$argon2id$v=19$m=99999999,t=1,p=1$AAAA$AAAA", "x"); err != ErrBadHash {
		t.Fatalf("absurd memory parameter accepted: %v", err)
	}
}

func FuzzVerifyMosquitto(f *testing.F) {
	f.Add("$7$101$poqlzekzCOUNYFZO$MeifW3yZXujjv8E9iD6jH0ivNlRnsGQmIMSCAGGcImDD/bKWNFndQXk+LYE8cGfF7igOksQAkEvJj0pWavPqkg==", "secret")
	f.Add("$7$1$$", "")
	f.Fuzz(func(t *testing.T, hash, pw string) {
		if strings.Count(hash, "$") == 4 && strings.HasPrefix(hash, "$7$") {
			// bound the work an arbitrary iteration count may ask for
			if it := strings.Split(hash, "$")[2]; len(it) > 5 {
				return
			}
		}
		ok, err := VerifyMosquitto(hash, pw)
		if ok && err != nil {
			t.Fatal("ok with error")
		}
	})
}

func FuzzVerifyPassword(f *testing.F) {
	f.Add("$argon2id$v=19$m=16,t=1,p=1$c2FsdHNhbHQ$aGFzaA", "pw")
	f.Fuzz(func(t *testing.T, hash, pw string) {
		if strings.Contains(hash, "m=") && !strings.Contains(hash, "m=16,") {
			return // keep memory-hard work small while fuzzing the parser
		}
		_, _ = VerifyPassword(hash, pw)
	})
}

// BenchmarkDeviceVerify measures one PBKDF2 device check at mosquitto_passwd's
// count and at a hardened count, against a verified-cache hit.
func BenchmarkDeviceVerify(b *testing.B) {
	for _, it := range []int{DefaultPBKDF2Iterations, 20000} {
		h, _ := MosquittoHash("device-password-123", it)
		b.Run("pbkdf2-"+strconv.Itoa(it), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if ok, _ := VerifyMosquitto(h, "device-password-123"); !ok {
					b.Fatal("no")
				}
			}
		})
	}
}
