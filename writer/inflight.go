package writer

import "time"

// inFlight is the bookkeeping of the appends in flight (round.go): the accounts and client
// command ids they hold busy, the globally unique ids they reserve, how many run, the channel
// their outcomes come back on, and how the last one went (what batching lingers on). It makes no
// store call; only the writer goroutine reads and changes it (the appends only send on acks).
type inFlight struct {
	accounts map[string]bool // accounts with an append in flight
	commands map[string]bool // command ids with an append in flight
	// reserved maps a unique id (a createdIDs or subscriptionKey key) to the account whose append
	// in flight creates or takes it: another account's command on it waits for that outcome.
	reserved map[string]string
	// unsure holds the accounts of an append that failed without being refused (a timeout): it
	// may still land, later than any read of the account's version can see. Their appends check
	// the account's version until one such append lands (carryFences does not put the partition
	// fence in its place), so the store refuses a retry beside the late one (noteUnsure).
	unsure map[string]bool
	n      int             // appends in flight
	acks   chan appendDone // their outcomes, one each; buffered for maxInflight
	last   lastAppend      // the last append to finish
}

func newInFlight(maxInflight int) inFlight {
	return inFlight{
		accounts: map[string]bool{},
		commands: map[string]bool{},
		reserved: map[string]string{},
		unsure:   map[string]bool{},
		acks:     make(chan appendDone, maxInflight),
	}
}

// busy reports whether r must wait for an append in flight: one on its account, or (for a
// client's command) one of the same command id.
func (f *inFlight) busy(r *request) bool {
	return f.accounts[r.AccountID] || (!r.internal && f.commands[r.CommandID])
}

// accountBusy reports whether an append in flight holds account id.
func (f *inFlight) accountBusy(id string) bool { return f.accounts[id] }

// hold marks r's account (and, for a client's command, its command id) busy until release.
func (f *inFlight) hold(r *request) {
	f.accounts[r.AccountID] = true
	if !r.internal {
		f.commands[r.CommandID] = true
	}
}

// release ends what hold marked for r.
func (f *inFlight) release(r *request) {
	delete(f.accounts, r.AccountID)
	delete(f.commands, r.CommandID)
}

// reserve notes that accountID's append (about to be launched) creates or takes unique id.
func (f *inFlight) reserve(id, accountID string) { f.reserved[id] = accountID }

// reservedBy returns the account whose append in flight reserves unique id, if any.
func (f *inFlight) reservedBy(id string) (string, bool) {
	a, ok := f.reserved[id]
	return a, ok
}

// unreserve drops accountID's reservation of unique id (another account's stays).
func (f *inFlight) unreserve(id, accountID string) {
	if f.reserved[id] == accountID {
		delete(f.reserved, id)
	}
}

// noteUnsure marks the accounts of a failed append that may still land.
func (f *inFlight) noteUnsure(plans []planned) {
	for _, p := range plans {
		f.unsure[p.req.AccountID] = true
	}
}

// isUnsure reports whether an append of account id may still land unseen (noteUnsure).
func (f *inFlight) isUnsure(id string) bool { return f.unsure[id] }

// sure ends noteUnsure for account id: an append that checked its version landed, so an earlier
// one can no longer land after it (the store would refuse that one's successor too).
func (f *inFlight) sure(id string) { delete(f.unsure, id) }

// launched counts an append started.
func (f *inFlight) launched() { f.n++ }

// ended counts an append finished at now and records how it went: the client requests it answered
// (its appended commands and its rejections; none when the append failed) and how long it took.
func (f *inFlight) ended(d *appendDone, now time.Time) {
	f.n--
	f.last = lastAppend{at: now, took: d.took}
	if d.err != nil {
		return
	}
	for _, p := range d.plans {
		if !p.req.internal {
			f.last.answered++
		}
	}
	f.last.answered += len(d.rejects)
}
