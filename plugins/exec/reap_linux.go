package exec

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	osexec "os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// How a trial's processes are found on Linux.
//
// The plugin makes itself a child subreaper before its first trial, so
// every process a trial starts stays in the plugin's process tree however
// it detaches: when its parent exits it is re-parented to the plugin, not
// to init. Each trial's command gets a token in its environment, which its
// descendants inherit. When a trial ends (or is killed), the plugin walks
// /proc from itself down and kills, round after round until a round finds
// nothing new:
//
//   - every process carrying the trial's token, and every descendant of
//     one (a descendant that cleared its environment still hangs below
//     it);
//   - every process in the trial's process group;
//   - every process carrying the token of a trial that already ended;
//   - at the end only, every orphan re-parented to the plugin that has no
//     token (it cleared its environment) and detached from the plugin's
//     session or process group, when no other trial that was running when
//     it was born still runs: that trial could own it, and its own end
//     kills it. With parallelism 1 that is at the end of its own trial.
//
// Then it reaps the killed processes that were re-parented to it, by
// pidfd, so no pid is ever confused with a later process of the same
// number and no exit status Go waits for (a command's) is taken.

// trialTokenEnv names the environment variable that marks a trial's
// processes.
const trialTokenEnv = "SWEETSPOT_TRIAL_TOKEN"

// maxSweepRounds bounds the rounds of one sweep: a round finds what the
// processes killed in the previous one forked meanwhile.
const maxSweepRounds = 64

// reapWait bounds how long a sweep waits for its killed processes to be
// reaped (a process in uninterruptible sleep dies when it wakes).
const reapWait = 5 * time.Second

// trialMark is one trial's token and when it was handed out.
type trialMark struct {
	token string
	// born is the boot-clock tick at which the trial registered, before
	// its command started.
	born uint64
}

// trials is the registry of the plugin's running trials.
var trials struct {
	once      sync.Once
	subreaper bool
	prefix    string // this plugin's tokens start with it
	mu        sync.Mutex
	next      uint64
	running   map[string]*trialMark
}

func setupTrials() {
	var b [8]byte
	_, _ = rand.Read(b[:])
	trials.prefix = fmt.Sprintf("%d-%s-", os.Getpid(), hex.EncodeToString(b[:]))
	trials.running = map[string]*trialMark{}
	trials.subreaper = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == nil
}

// markTrial registers a trial and puts its token in cmd's environment.
func markTrial(cmd *osexec.Cmd) *trialMark {
	trials.once.Do(setupTrials)
	trials.mu.Lock()
	defer trials.mu.Unlock()
	trials.next++
	m := &trialMark{token: trials.prefix + strconv.FormatUint(trials.next, 10), born: bootTicks()}
	trials.running[m.token] = m
	if cmd.Env == nil {
		cmd.Env = os.Environ()
	}
	cmd.Env = append(cmd.Env, trialTokenEnv+"="+m.token)
	return m
}

// release ends the trial's registration.
func (m *trialMark) release() {
	if m == nil {
		return
	}
	trials.mu.Lock()
	delete(trials.running, m.token)
	trials.mu.Unlock()
}

// sweep kills the trial's processes (and, when final, the orphans only it
// can own) and reaps those the plugin adopted. leader is the command's
// pid, left for its Wait.
func (m *trialMark) sweep(leader int, final bool) {
	if m == nil {
		return
	}
	self := os.Getpid()
	victims := map[procKey]int{} // pidfd by process
	defer func() {
		for _, fd := range victims {
			unix.Close(fd)
		}
	}()
	for range maxSweepRounds {
		procs, err := scanTree(self)
		if err != nil {
			procs, err = scanProcs()
		}
		if err != nil {
			return // without /proc, the process group kill is all there is
		}
		found := 0
		for _, p := range m.condemned(procs, self, leader, final) {
			k := procKey{p.pid, p.start}
			if _, done := victims[k]; done {
				continue
			}
			fd, err := unix.PidfdOpen(p.pid, 0)
			if err != nil {
				// Gone already, or no pidfd (before Linux 5.3): kill by pid.
				if errors.Is(err, unix.ENOSYS) {
					_ = unix.Kill(p.pid, unix.SIGKILL)
				}
				victims[k] = -1
				continue
			}
			// The pidfd names the process now holding the pid: check that
			// it is the one scanned.
			if now, err := readStat(p.pid); err != nil || now.start != p.start {
				unix.Close(fd)
				continue
			}
			_ = unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0)
			victims[k] = fd
			found++
		}
		if found == 0 {
			break
		}
	}
	reap(victims, leader, self)
}

// condemned are the processes the sweep kills in this round, zombies
// among them (they are reaped).
func (m *trialMark) condemned(procs map[int]procInfo, self, leader int, final bool) []procInfo {
	selfInfo := procs[self]
	children := map[int][]int{}
	for pid, p := range procs {
		children[p.ppid] = append(children[p.ppid], pid)
	}
	trials.mu.Lock()
	running := make(map[string]*trialMark, len(trials.running))
	for k, v := range trials.running {
		running[k] = v
	}
	trials.mu.Unlock()

	var out []procInfo
	// owner: "" unknown, else the token the process answers to.
	var walk func(pid int, owner string)
	walk = func(pid int, owner string) {
		for _, c := range children[pid] {
			p := procs[c]
			own := owner
			if tok := environToken(c); tok != "" && strings.HasPrefix(tok, trials.prefix) {
				own = tok
			}
			if own == "" && p.pgid == leader {
				own = m.token
			}
			switch {
			case own == m.token:
				out = append(out, p)
			case own != "" && running[own] == nil:
				// A trial that ended: whatever it left goes now.
				out = append(out, p)
			case own == "" && pid == self && final && detached(p, selfInfo) && !coveredByOthers(p.start, m, running):
				out = append(out, p)
				own = m.token // and everything below it
			}
			walk(c, own)
		}
	}
	walk(self, "")
	// The command itself is its Wait's to reap; it was killed with its
	// group.
	filtered := out[:0]
	for _, p := range out {
		if p.pid != leader {
			filtered = append(filtered, p)
		}
	}
	return filtered
}

// detached says whether a child of the plugin left the plugin's session
// or sits in a process group another process leads: a trial's orphan does
// (the commands' groups are their own), a process the plugin started
// otherwise does not.
func detached(p, self procInfo) bool {
	return p.sid != self.sid || (p.pgid != self.pgid && p.pgid != p.pid)
}

// coveredByOthers says whether a trial other than m, still running, had
// registered when a process born at tick was born (one tick of slack):
// that trial may own it.
func coveredByOthers(born uint64, m *trialMark, running map[string]*trialMark) bool {
	for tok, o := range running {
		if tok != m.token && o.born <= born+1 {
			return true
		}
	}
	return false
}

// reap waits for the killed processes to die and reaps those re-parented
// to the plugin. A process whose parent was killed too is re-parented when
// that parent dies.
func reap(victims map[procKey]int, leader, self int) {
	pending := map[procKey]int{}
	for k, fd := range victims {
		if fd >= 0 && k.pid != leader {
			pending[k] = fd
		}
	}
	deadline := time.Now().Add(reapWait)
	for len(pending) > 0 {
		for k, fd := range pending {
			var info unix.Siginfo
			err := unix.Waitid(unix.P_PIDFD, fd, &info, unix.WEXITED|unix.WNOHANG, nil)
			if err == nil && info.Signo == int32(unix.SIGCHLD) {
				delete(pending, k) // reaped
				continue
			}
			if errors.Is(err, unix.ECHILD) {
				// Not the plugin's child: gone, or under a parent that was
				// killed too (it comes to the plugin when that parent dies),
				// or under one that is not the sweep's, which reaps it.
				p, err := readStat(k.pid)
				if err != nil || p.start != k.start || (p.ppid != self && !isVictimPid(victims, p.ppid)) {
					delete(pending, k)
				}
			}
		}
		if len(pending) == 0 || time.Now().After(deadline) {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func isVictimPid(victims map[procKey]int, pid int) bool {
	for k := range victims {
		if k.pid == pid {
			return true
		}
	}
	return false
}

// procKey names one process: a pid and its start time, since pids are
// reused.
type procKey struct {
	pid   int
	start uint64
}

// procInfo is what /proc/PID/stat says of a process.
type procInfo struct {
	pid, ppid, pgid, sid int
	state                byte
	start                uint64 // boot-clock ticks
}

// scanTree reads the stat of the plugin and of every process below it,
// going down through each thread's list of children
// (/proc/PID/task/TID/children): a trial's processes are all there, and
// the rest of the machine is not read. An error means the kernel keeps no
// such lists; scanProcs then reads every process instead.
func scanTree(self int) (map[int]procInfo, error) {
	root, err := readStat(self)
	if err != nil {
		return nil, err
	}
	out := map[int]procInfo{self: root}
	queue := []int{self}
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		kids, err := listChildren(pid)
		if err != nil {
			if pid == self {
				return nil, err
			}
			continue // it died meanwhile
		}
		for _, c := range kids {
			if _, seen := out[c]; seen {
				continue
			}
			if st, err := readStat(c); err == nil {
				out[c] = st
				queue = append(queue, c)
			}
		}
	}
	return out, nil
}

// listChildren lists the children of every thread of pid.
func listChildren(pid int) ([]int, error) {
	dir := "/proc/" + strconv.Itoa(pid) + "/task/"
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []int
	read := 0
	for _, t := range tasks {
		b, err := os.ReadFile(dir + t.Name() + "/children")
		if err != nil {
			continue // the thread ended
		}
		read++
		for _, f := range strings.Fields(string(b)) {
			if c, err := strconv.Atoi(f); err == nil {
				out = append(out, c)
			}
		}
	}
	if read == 0 {
		return nil, errors.New("no children list")
	}
	return out, nil
}

// scanProcs reads every process's stat.
func scanProcs() (map[int]procInfo, error) {
	d, err := os.Open("/proc")
	if err != nil {
		return nil, err
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return nil, err
	}
	out := make(map[int]procInfo, len(names))
	for _, n := range names {
		pid, err := strconv.Atoi(n)
		if err != nil {
			continue
		}
		if p, err := readStat(pid); err == nil {
			out[pid] = p
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no process in /proc")
	}
	return out, nil
}

// readStat parses /proc/PID/stat; the command name, in parentheses, may
// hold anything, so fields are counted from its closing one.
func readStat(pid int) (procInfo, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procInfo{}, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procInfo{}, errors.New("malformed stat")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 || len(f[0]) != 1 {
		return procInfo{}, errors.New("malformed stat")
	}
	p := procInfo{pid: pid, state: f[0][0]}
	var errs [4]error
	p.ppid, errs[0] = strconv.Atoi(f[1])
	p.pgid, errs[1] = strconv.Atoi(f[2])
	p.sid, errs[2] = strconv.Atoi(f[3])
	p.start, errs[3] = strconv.ParseUint(f[19], 10, 64)
	if err := errors.Join(errs[:]...); err != nil {
		return procInfo{}, fmt.Errorf("malformed stat: %w", err)
	}
	return p, nil
}

// environToken is the trial token in a process's environment, "" when it
// has none or cannot be read (a zombie, another user's process).
func environToken(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	if err != nil {
		return ""
	}
	key := []byte(trialTokenEnv + "=")
	for kv := range bytes.SplitSeq(b, []byte{0}) {
		if v, ok := bytes.CutPrefix(kv, key); ok {
			return string(v)
		}
	}
	return ""
}

// clockTicks is USER_HZ, the unit of a process's start time in
// /proc/PID/stat: 100 on every Linux architecture.
const clockTicks = 100

// bootTicks is the boot clock now, in the unit of /proc/PID/stat's start
// times.
func bootTicks() uint64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return 0
	}
	return uint64(ts.Sec)*clockTicks + uint64(ts.Nsec)/(1e9/clockTicks)
}
