// Copyright 2017 The Go Authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

// Package argon2id is golang.org/x/crypto/argon2's IDKey (RFC 9106,
// version 0x13) with one difference: the memory a hash works in is kept for
// the next hash instead of being allocated anew.
//
// x/crypto allocates the whole memory cost (19 MiB at OWASP's parameters) on
// every call. That is garbage for a collection per hash, and once the
// runtime has given those pages back to the OS, the next hash takes a page
// fault for each of them (about 4,900, 13–27 ms on the machines this was
// measured on). Here the blocks go back to a sync.Pool: under load they are
// reused as they are; when hashing stops, two collections free them like
// any other memory. The first pass writes each block instead of XORing into
// it (the specification's wording; x/crypto XORs into zeroed memory, which
// gives the same bytes), so a reused block needs no clearing.
//
// What a hash leaves in the pool is what x/crypto leaves in freed memory
// until the runtime reuses it: with two or more passes every block was last
// written by the final pass, and checking a password guess against any of
// them costs at least one whole pass; with one pass the first blocks stay,
// and they are a few cheap steps from the password. Auth hashes with two.
//
// The block function (blamka_amd64.s, generated, unchanged; blamka*.go,
// with the Go fallback's rounds written once) and BLAKE2b's variable-length
// hash (blake2b.go) are x/crypto v0.59.0's; this file is its argon2.go cut
// down to argon2id. LICENSE and PATENTS are x/crypto's. The tests check the
// output against x/crypto and against its published vectors.
package argon2id

import (
	"encoding/binary"
	"sync"

	"golang.org/x/crypto/blake2b"
)

// Version is the Argon2 version implemented, as written in a PHC string.
const Version = 0x13

// The modes' numbers in the initial hash; argon2i's data-independent
// addressing is used for the first half of argon2id's first pass.
const (
	argon2i  = 1
	argon2id = 2
)

const (
	blockLength = 128
	syncPoints  = 4
)

type block [blockLength]uint64

// memory holds the blocks of finished hashes for the next.
var memory sync.Pool // of *blocks

type blocks struct{ b []block }

// getBlocks returns n blocks whose contents are whatever a previous hash
// left there.
func getBlocks(n uint32) *blocks {
	if m, ok := memory.Get().(*blocks); ok && uint32(cap(m.b)) >= n {
		m.b = m.b[:n]
		return m
	}
	return &blocks{b: make([]block, n)}
}

// IDKey derives a key from the password, salt, and cost parameters using
// argon2id, exactly as golang.org/x/crypto/argon2.IDKey does: time is the
// number of passes, memory the memory cost in KiB, threads the number of
// lanes, and keyLen the length of the key returned. It panics if time or
// threads is zero.
func IDKey(password, salt []byte, time, memoryKiB uint32, threads uint8, keyLen uint32) []byte {
	if time < 1 {
		panic("argon2id: number of rounds too small")
	}
	if threads < 1 {
		panic("argon2id: parallelism degree too low")
	}
	n := memoryKiB / (syncPoints * uint32(threads)) * (syncPoints * uint32(threads))
	if n < 2*syncPoints*uint32(threads) {
		n = 2 * syncPoints * uint32(threads)
	}
	m := getBlocks(n)
	defer memory.Put(m)
	return deriveKey(m.b, password, salt, time, memoryKiB, uint32(threads), keyLen)
}

// deriveKey computes the key in B, whose length is the memory cost rounded
// as the specification says.
func deriveKey(B []block, password, salt []byte, time, memoryKiB, threads, keyLen uint32) []byte {
	h0 := initHash(password, salt, time, memoryKiB, threads, keyLen)
	initBlocks(&h0, B, threads)
	processBlocks(B, time, uint32(len(B)), threads)
	return extractKey(B, uint32(len(B)), threads, keyLen)
}

func initHash(password, salt []byte, time, memory, threads, keyLen uint32) [blake2b.Size + 8]byte {
	var (
		h0     [blake2b.Size + 8]byte
		params [24]byte
		tmp    [4]byte
	)

	b2, _ := blake2b.New512(nil)
	binary.LittleEndian.PutUint32(params[0:4], threads)
	binary.LittleEndian.PutUint32(params[4:8], keyLen)
	binary.LittleEndian.PutUint32(params[8:12], memory)
	binary.LittleEndian.PutUint32(params[12:16], time)
	binary.LittleEndian.PutUint32(params[16:20], uint32(Version))
	binary.LittleEndian.PutUint32(params[20:24], uint32(argon2id))
	b2.Write(params[:])
	for _, in := range [][]byte{password, salt, nil, nil} { // no secret, no associated data
		binary.LittleEndian.PutUint32(tmp[:], uint32(len(in)))
		b2.Write(tmp[:])
		b2.Write(in)
	}
	b2.Sum(h0[:0])
	return h0
}

// initBlocks writes the first two blocks of each lane.
func initBlocks(h0 *[blake2b.Size + 8]byte, B []block, threads uint32) {
	var block0 [1024]byte
	memory := uint32(len(B))
	for lane := uint32(0); lane < threads; lane++ {
		j := lane * (memory / threads)
		binary.LittleEndian.PutUint32(h0[blake2b.Size+4:], lane)

		binary.LittleEndian.PutUint32(h0[blake2b.Size:], 0)
		blake2bHash(block0[:], h0[:])
		for i := range B[j+0] {
			B[j+0][i] = binary.LittleEndian.Uint64(block0[i*8:])
		}

		binary.LittleEndian.PutUint32(h0[blake2b.Size:], 1)
		blake2bHash(block0[:], h0[:])
		for i := range B[j+1] {
			B[j+1][i] = binary.LittleEndian.Uint64(block0[i*8:])
		}
	}
}

func processBlocks(B []block, time, memory, threads uint32) {
	lanes := memory / threads
	segments := lanes / syncPoints

	processSegment := func(n, slice, lane uint32, wg *sync.WaitGroup) {
		var addresses, in, zero block
		dataIndependent := n == 0 && slice < syncPoints/2
		if dataIndependent {
			in[0] = uint64(n)
			in[1] = uint64(lane)
			in[2] = uint64(slice)
			in[3] = uint64(memory)
			in[4] = uint64(time)
			in[5] = uint64(argon2id)
		}

		index := uint32(0)
		if n == 0 && slice == 0 {
			index = 2 // we have already generated the first two blocks
			in[6]++
			processBlock(&addresses, &in, &zero)
			processBlock(&addresses, &addresses, &zero)
		}

		offset := lane*lanes + slice*segments + index
		var random uint64
		for index < segments {
			prev := offset - 1
			if index == 0 && slice == 0 {
				prev += lanes // last block in lane
			}
			if dataIndependent {
				if index%blockLength == 0 {
					in[6]++
					processBlock(&addresses, &in, &zero)
					processBlock(&addresses, &addresses, &zero)
				}
				random = addresses[index%blockLength]
			} else {
				random = B[prev][0]
			}
			newOffset := indexAlpha(random, lanes, segments, threads, n, slice, lane, index)
			if n == 0 {
				// The first pass writes the block: what is there is
				// an earlier hash's.
				processBlock(&B[offset], &B[prev], &B[newOffset])
			} else {
				processBlockXOR(&B[offset], &B[prev], &B[newOffset])
			}
			index, offset = index+1, offset+1
		}
		wg.Done()
	}

	for n := uint32(0); n < time; n++ {
		for slice := uint32(0); slice < syncPoints; slice++ {
			var wg sync.WaitGroup
			for lane := uint32(0); lane < threads; lane++ {
				wg.Add(1)
				go processSegment(n, slice, lane, &wg)
			}
			wg.Wait()
		}
	}
}

func extractKey(B []block, memory, threads, keyLen uint32) []byte {
	lanes := memory / threads
	for lane := uint32(0); lane < threads-1; lane++ {
		for i, v := range B[(lane*lanes)+lanes-1] {
			B[memory-1][i] ^= v
		}
	}

	var block [1024]byte
	for i, v := range B[memory-1] {
		binary.LittleEndian.PutUint64(block[i*8:], v)
	}
	key := make([]byte, keyLen)
	blake2bHash(key, block[:])
	return key
}

func indexAlpha(rand uint64, lanes, segments, threads, n, slice, lane, index uint32) uint32 {
	refLane := uint32(rand>>32) % threads
	if n == 0 && slice == 0 {
		refLane = lane
	}
	m, s := 3*segments, ((slice+1)%syncPoints)*segments
	if lane == refLane {
		m += index
	}
	if n == 0 {
		m, s = slice*segments, 0
		if slice == 0 || lane == refLane {
			m += index
		}
	}
	if index == 0 || lane == refLane {
		m--
	}
	return phi(rand, uint64(m), uint64(s), refLane, lanes)
}

func phi(rand, m, s uint64, lane, lanes uint32) uint32 {
	p := rand & 0xFFFFFFFF
	p = (p * p) >> 32
	p = (p * m) >> 32
	return lane*lanes + uint32((s+m-(p+1))%uint64(lanes))
}
