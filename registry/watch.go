package registry

// ChangeOp says what happened to a device's static data.
type ChangeOp string

// Change operations announced to watchers.
const (
	ChangeCreated ChangeOp = "created" // new device (and, in Watch's replay, every existing one)
	ChangeUpdated ChangeOp = "updated" // static fields replaced (PUT, ImportFile)
	ChangeDeleted ChangeOp = "deleted" // removed; Device is as it was before removal
)

// Change is one edit of a device's static data (what people edit: class,
// position, rtsp_url, …), so components that derive state from it — the video
// relay's RTSP sources — follow the registry instead of a copy in their config.
type Change struct {
	Op     ChangeOp
	Device Device // after the change; before it for ChangeDeleted
}

// Watch registers f and, under the same lock, replays every registered device
// to it as ChangeCreated; from then on f sees every Create, Update, Upsert,
// ImportFile or SeedFile row and Delete, in the order they were applied. With the replay
// and the stream under one lock a watcher never misses or reorders an edit.
//
// f runs synchronously with the registry's write lock held (so calls never
// overlap), after the change is stored: it must be quick and must not call the
// registry's writing methods (reading with Get or List is fine). Devices that
// Admit auto-registers are not announced (the ingest hot path does no
// callbacks); they appear with their first edit.
func (g *Registry) Watch(f func(Change)) {
	g.wmu.Lock()
	defer g.wmu.Unlock()
	g.watchers = append(g.watchers, f)
	for _, d := range g.List(Filter{}) {
		f(Change{Op: ChangeCreated, Device: d})
	}
}

// announceLocked tells every watcher about a change. Caller holds wmu.
func (g *Registry) announceLocked(op ChangeOp, d Device) {
	for _, f := range g.watchers {
		f(Change{Op: op, Device: d})
	}
}

// announceEntryLocked announces e's current state. Caller holds wmu, not e.mu.
func (g *Registry) announceEntryLocked(op ChangeOp, e *entry) {
	if len(g.watchers) == 0 {
		return
	}
	e.mu.Lock()
	d := e.snapshot()
	e.mu.Unlock()
	g.announceLocked(op, d)
}
