package auth

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// BootstrapAdmin creates the configured admin with a random password when the
// database has no user at all, and returns that password (the caller prints it
// once; only its hash is stored). On later starts it returns "".
func (s *Store) BootstrapAdmin(ctx context.Context) (string, error) {
	if s.cfg.BootstrapAdmin == "" {
		return "", nil
	}
	n, err := s.CountUsers(ctx)
	if err != nil || n > 0 {
		return "", err
	}
	pw := RandomSecret(15)
	if err := s.CreateUser(ctx, s.cfg.BootstrapAdmin, RoleAdmin, pw); err != nil {
		return "", err
	}
	if err := s.Audit(ctx, AuditEntry{Actor: "system", Role: RoleAdmin, Action: "user.bootstrap",
		Target: map[string]string{"name": s.cfg.BootstrapAdmin}, Remote: "local", Status: 201}); err != nil {
		return "", err
	}
	return pw, nil
}

// SimCredentials makes sure every device in ids has MQTT credentials that the
// YAML file at path ("device id: password", mode 0600) knows, issuing new ones
// where the file lacks an entry or its password no longer verifies (a reset
// database). It returns how many it issued. This is the demo path for
// firmware-sim --credentials; production devices get theirs through the API.
func (s *Store) SimCredentials(ctx context.Context, ids []string, path string) (int, error) {
	file, err := readSimFile(path)
	if err != nil {
		return 0, err
	}
	issued := 0
	for _, id := range ids {
		if !ValidUsername(id) {
			continue
		}
		if pw, ok := file[id]; ok {
			c, err := s.GetMQTT(ctx, id)
			if err == nil && c.Kind == MQTTDevice {
				if ok, err := VerifyMosquitto(c.Hash, pw); err == nil && ok {
					continue
				}
			}
		}
		pw, err := s.IssueMQTT(ctx, id, MQTTDevice)
		if err != nil {
			return issued, err
		}
		file[id] = pw
		issued++
	}
	if issued == 0 {
		return 0, nil
	}
	if err := writeSimFile(path, "# MQTT passwords for firmware-sim (device id: password). Generated; keep private.\n", file); err != nil {
		return issued, err
	}
	if err := s.Audit(ctx, AuditEntry{Actor: "system", Role: RoleAdmin, Action: "device.credentials.bootstrap",
		Target: map[string]string{"file": path}, Remote: "local", Status: 201, Detail: fmt.Sprintf("%d devices", issued)}); err != nil {
		return issued, err
	}
	return issued, nil
}

// SimCameraTokenName names the camera tokens SimCameraTokens mints, so a
// reissue can revoke the stale ones instead of piling them up.
const SimCameraTokenName = "firmware-sim camera"

// SimCameraTokens makes sure every camera in cameras has a camera token (WHIP
// publishing, bound to that camera) that the YAML file at path ("camera id:
// token", mode 0600) holds, minting one owned by owner (an admin) where the file
// lacks an entry or its token no longer resolves to that camera (expired,
// revoked, reset database). It returns how many it minted. Like SimCredentials
// this is the demo path for firmware-sim --video; real cameras get theirs
// through POST /api/v1/tokens.
func (s *Store) SimCameraTokens(ctx context.Context, owner string, cameras []string, path string) (int, error) {
	file, err := readSimFile(path)
	if err != nil {
		return 0, err
	}
	var stale []Token
	issued := 0
	for _, id := range cameras {
		if !ValidUsername(id) {
			continue
		}
		if tok, ok := file[id]; ok {
			p, err := s.TokenPrincipal(ctx, tok)
			if err == nil && p.Role == RoleCamera && p.Device == id {
				continue
			}
			if err != nil && !errors.Is(err, ErrBadCredentials) {
				return issued, err
			}
		}
		if stale == nil {
			if stale, err = s.ListTokens(ctx, owner); err != nil {
				return issued, err
			}
		}
		for _, t := range stale {
			if t.Role == RoleCamera && t.Device == id && strings.HasPrefix(t.Name, SimCameraTokenName) {
				if err := s.RevokeToken(ctx, t.ID, owner); err != nil && !errors.Is(err, ErrTokenNotFound) {
					return issued, err
				}
			}
		}
		_, secret, err := s.CreateToken(ctx, owner, RoleAdmin, TokenRequest{Name: SimCameraTokenName + " " + id, Role: RoleCamera, Device: id})
		if err != nil {
			return issued, err
		}
		file[id] = secret
		issued++
	}
	if issued == 0 {
		return 0, nil
	}
	if err := writeSimFile(path, "# WHIP camera tokens for firmware-sim --video (camera id: token). Generated; keep private.\n", file); err != nil {
		return issued, err
	}
	if err := s.Audit(ctx, AuditEntry{Actor: "system", Role: RoleAdmin, Action: "token.camera.bootstrap",
		Target: map[string]string{"file": path}, Remote: "local", Status: 201, Detail: fmt.Sprintf("%d cameras", issued)}); err != nil {
		return issued, err
	}
	return issued, nil
}

// readSimFile reads a generated "id: secret" YAML file; a missing file is empty.
func readSimFile(path string) (map[string]string, error) {
	file := map[string]string{}
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		if err := yaml.Unmarshal(b, &file); err != nil {
			return nil, fmt.Errorf("auth: %s: %w", path, err)
		}
		if file == nil {
			file = map[string]string{}
		}
	case errors.Is(err, os.ErrNotExist):
	default:
		return nil, fmt.Errorf("auth: %w", err)
	}
	return file, nil
}

// writeSimFile writes an "id: secret" map as sorted, quoted YAML (mode 0600).
func writeSimFile(path, header string, file map[string]string) error {
	keys := make([]string, 0, len(file))
	for k := range file {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var node yaml.Node
	node.Kind = yaml.MappingNode
	for _, k := range keys {
		node.Content = append(node.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: k},
			&yaml.Node{Kind: yaml.ScalarNode, Value: file[k], Style: yaml.DoubleQuotedStyle})
	}
	out, err := yaml.Marshal(&node)
	if err != nil {
		return fmt.Errorf("auth: %w", err)
	}
	return WriteFileAtomic(path, append([]byte(header), out...), 0o600)
}
