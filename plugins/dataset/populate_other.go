//go:build !linux

package dataset

func populate[T any]([]T) {}
