# The fixture of the acceptance test (make testacc): a generated dataset,
# filtered by this plugin. Its outputs land in the run directory as Arrow
# IPC files: stages/filter.positive/round-000/{output,summary}.arrow.

dataset "blobs" {
  generator = "blobs"
  rows      = 500
  classes   = 3
  features  = 4
  seed      = 7
}

stage "filter" "positive" {
  plugin = "filter"
  input  = dataset.blobs
  column = "x0"
  min    = 0
}
