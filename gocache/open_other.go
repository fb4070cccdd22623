//go:build !unix

package gocache

const openNonblock = 0
