package projections

// ParkedCountUnlocked is the parked count, read without the lock (for a hook's test, which runs
// under it).
func ParkedCountUnlocked(p *Projector) int { return p.parkedN }
