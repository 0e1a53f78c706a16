this file is skipped when loading the directory {
