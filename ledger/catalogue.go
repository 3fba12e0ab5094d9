package ledger

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"sort"
)

// Feature is one product feature credits can be allocated to.
type Feature struct {
	ID           string `json:"id"`
	Name         string `json:"name"`
	PaygEligible bool   `json:"payg_eligible"`
	Unit         string `json:"unit"`
	// InstanceSized features meter usage per computer and price it by instance size and cloud
	// connector (workload protection); see RateCard.Resolve.
	InstanceSized bool `json:"instance_sized,omitempty"`
}

// Catalogue is the set of features the ledger knows; it is data (catalogue.json), not code, so
// product can add a feature without touching the rules.
type Catalogue struct {
	features map[string]Feature
}

//go:embed catalogue.json
var defaultCatalogue []byte

// DefaultCatalogue is the catalogue shipped with this build.
func DefaultCatalogue() Catalogue {
	c, err := ParseCatalogue(defaultCatalogue)
	if err != nil {
		// The embedded file is part of the build; a test parses it, so this cannot happen at run time.
		panic(err)
	}
	return c
}

// ParseCatalogue reads a catalogue document, rejecting empty or duplicate feature ids.
func ParseCatalogue(data []byte) (Catalogue, error) {
	var doc struct {
		Features []Feature `json:"features"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return Catalogue{}, fmt.Errorf("parse catalogue: %w", err)
	}
	c := Catalogue{features: make(map[string]Feature, len(doc.Features))}
	for _, f := range doc.Features {
		if !ValidID(f.ID) {
			return Catalogue{}, fmt.Errorf("catalogue: invalid feature id %q", f.ID)
		}
		if _, dup := c.features[f.ID]; dup {
			return Catalogue{}, fmt.Errorf("catalogue: duplicate feature %q", f.ID)
		}
		c.features[f.ID] = f
	}
	return c, nil
}

// Feature looks a feature up by id.
func (c Catalogue) Feature(id string) (Feature, bool) {
	f, ok := c.features[id]
	return f, ok
}

// Features lists the catalogue sorted by id.
func (c Catalogue) Features() []Feature {
	out := make([]Feature, 0, len(c.features))
	for _, f := range c.features {
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}
