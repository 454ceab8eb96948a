package auth

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"

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
	file := map[string]string{}
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		if err := yaml.Unmarshal(b, &file); err != nil {
			return 0, fmt.Errorf("auth: %s: %w", path, err)
		}
	case errors.Is(err, os.ErrNotExist):
	default:
		return 0, fmt.Errorf("auth: %w", err)
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
		return issued, fmt.Errorf("auth: %w", err)
	}
	out = append([]byte("# MQTT passwords for firmware-sim (device id: password). Generated; keep private.\n"), out...)
	if err := WriteFileAtomic(path, out, 0o600); err != nil {
		return issued, err
	}
	if err := s.Audit(ctx, AuditEntry{Actor: "system", Role: RoleAdmin, Action: "device.credentials.bootstrap",
		Target: map[string]string{"file": path}, Remote: "local", Status: 201, Detail: fmt.Sprintf("%d devices", issued)}); err != nil {
		return issued, err
	}
	return issued, nil
}
