//go:build !linux

package dataset

func adviseHugePages[T any]([]T) {}

func populate[T any]([]T) {}
