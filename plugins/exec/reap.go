package exec

import osexec "os/exec"

// trialProcesses are the processes of one trial: its command and every
// process the command starts, directly or not, whatever it does to leave
// the command's process group (setsid, a double fork).
//
// The command runs as the leader of its own process group, which the
// kernel kills if the plugin dies first. Where the system allows it
// (Linux), the plugin is also a child subreaper, so that an orphan of a
// trial is re-parented to the plugin rather than to init and stays within
// reach, and each trial's command carries a token in its environment
// (trialTokenEnv) that its descendants inherit; see reap_linux.go for how
// a trial's processes are found and reaped.
type trialProcesses struct {
	cmd  *osexec.Cmd
	mark *trialMark // nil where processes cannot be traced beyond the group
}

// newTrialProcesses prepares cmd, not yet started, so that every process
// of its trial can be found and killed.
func newTrialProcesses(cmd *osexec.Cmd) *trialProcesses {
	setProcessGroup(cmd)
	return &trialProcesses{cmd: cmd, mark: markTrial(cmd)}
}

// kill kills the trial's processes now (timeout or cancellation), the
// command included; the command itself is left for its Wait to reap.
func (t *trialProcesses) kill() {
	if t.cmd.Process == nil {
		return
	}
	killProcessGroup(t.cmd.Process)
	t.mark.sweep(t.cmd.Process.Pid, false)
}

// end kills and reaps whatever the trial left running, once its command
// has been waited for; the trial is over after it.
func (t *trialProcesses) end() {
	if t.cmd.Process != nil {
		killProcessGroup(t.cmd.Process)
		t.mark.sweep(t.cmd.Process.Pid, true)
	}
	t.mark.release()
}
