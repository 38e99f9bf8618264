package guard

// Set is the guard of an edge: a default policy and per client key ones.
// A key with its own policy uses only that one.
type Set struct {
	Default *Policy
	PerKey  map[string]*Policy
}

// For is the policy of the client key named name; nil means no guard.
func (s *Set) For(name string) *Policy {
	if s == nil {
		return nil
	}
	if p, ok := s.PerKey[name]; ok {
		return p
	}
	return s.Default
}

// KeepsHome reports whether some policy of the set keeps requests at home.
func (s *Set) KeepsHome() bool {
	if s == nil {
		return false
	}
	if s.Default.KeepsHome() {
		return true
	}
	for _, p := range s.PerKey {
		if p.KeepsHome() {
			return true
		}
	}
	return false
}
