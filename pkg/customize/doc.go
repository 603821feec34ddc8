// Package customize turns customization ConfigMaps into fragments that are safe to merge:
// it parses each data key's YAML, drops every field off the allowlist, and says what it
// dropped and why. It makes no API calls.
package customize
