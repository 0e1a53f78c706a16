package exec

import osexec "os/exec"

// trialProcesses are the processes of one trial: its command and every
// process the command starts, directly or not.
type trialProcesses struct {
	cmd *osexec.Cmd
}

// newTrialProcesses prepares cmd, not yet started, so that every process
// of its trial can be found and killed.
func newTrialProcesses(cmd *osexec.Cmd) *trialProcesses {
	setProcessGroup(cmd)
	return &trialProcesses{cmd: cmd}
}

// kill kills the trial's processes now (timeout or cancellation), the
// command included.
func (t *trialProcesses) kill() { killProcessGroup(t.cmd.Process) }

// end kills whatever the trial left running once its command has been
// waited for.
func (t *trialProcesses) end() { killProcessGroup(t.cmd.Process) }
