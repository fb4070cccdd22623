// Package journal records every change made to one repository, so that
// the changes can be listed, diffed and taken back: for each path, what
// was there before and after (kind, mode, size, content by SHA-256 or a
// link's target), grouped in numbered checkpoints. It is a store: the
// operations that change a repository journal through it, and undo reads
// it; it knows nothing of sandboxes or front ends.
//
// # Layout
//
// A journal is a directory of this user's alone (0700, checked as the
// runtime directory is: a directory someone else owns or can write is
// refused), one per repository:
//
//	objects/ab/cdef...   content, named by the SHA-256 of what it holds
//	log                  the records, appended, never rewritten in place
//	lock                 flock(2)ed exclusively by whoever appends
//	head                 where the log was last read to (a cache; below)
//
// Files are 0600. Nothing outside the journal's directory is read or
// written.
//
// # Objects
//
// An object's first byte says how the rest is stored: 0, as it is; 1,
// compressed with zstd, chosen only when that saves at least an eighth of
// the size (source code does, most binaries and compressed files do not,
// and for those the decoder's time would buy nothing). An object is
// written once: Put of content already stored writes nothing (it touches
// the object's time, so that a Prune, which will spare recent objects,
// does not remove what an intent about to be written names). A new object is
// written to a temporary file in objects/, fsynced, renamed into place and
// its directory fsynced before Put returns, so an object a durable record
// names is itself durable. Get decompresses and checks the SHA-256
// against the name: a damaged object is an error (ErrDamaged), never
// wrong content.
//
// # Inline content
//
// A content given to Intend as State.Data goes in the log itself,
// compressed as an object would be ("zdata", base64 in its JSON) or as
// it is ("data"), when it is at most InlineMax (64 KiB) once compressed
// (a 100 KiB source file takes a fifth of that): one fsync, the log's,
// makes it durable with its record, where a Put costs two of its own (the
// object's and its directory's). Larger content is Put and named.
//
// The content before a change is in its intent: the change takes it
// away, so it must be durable first. The content after is named in the
// intent by its sum alone ("later"): the change itself puts it on disk,
// so the intent need not hold it, and it is compressed, after Done
// returns, into the done record (or Put, when it is larger), by the
// journal's tail: work that one goroutine does in order while the caller
// goes on (see Flush). Every reader in this process waits for the tail
// first, and an intent waits for it only when its content before is one
// the tail has not compressed yet. A done record lost with its process
// (killed before the tail wrote it) leaves the intent pending, and the
// disk then holds the content after: recovery reads it there and gives it
// to Resolve, whose record holds it. So hashing the content after (60 µs
// for 100 KiB) is the only work of the journal's that a change waits for
// besides the log's fsync: an edit of a 100 KiB file cost 0.99-1.15 ms
// more than without the journal with the content after compressed into
// the intent, and 0.13-0.22 ms more since (runner's
// BenchmarkEdit3Blocks100KiB, on a two-CPU machine whose disk's flush
// takes 0.15-0.25 ms).
//
// Content already stored as an object (most often the content before a
// change, which an earlier change left) is named by its sum, not written
// again. The checkpoint's End writes the objects of the inline contents
// whose compressed form is at least 4 KiB, without fsync (written at
// once, each would add its metadata to the log's next fsync: 1.7 ms more
// per change); a smaller one would take a whole block of the disk for
// less, so it stays in the log alone and is inline again in each intent
// that names it. An object written lazily that a crash lost or left
// empty is read from the log (Get falls back to it), and a Prune that
// drops the only record holding a content inline while a kept record
// names it writes the object durably first. A session of 1,000 replies
// on a repository of 10,000 files of Go's own source (two files edited
// and, every tenth reply, one written and one deleted) wrote 11.2 MB of
// content, and its journal is 14.4 MB of files taking 15.6 MB of disk:
// 1.3 and 1.4 times what changed (BenchmarkJournalOfASession in package
// runner).
//
// # The log
//
// The log is a sequence of frames: a 4-byte little-endian payload length,
// the CRC-32C (Castagnoli) of the payload, 4 bytes little-endian, and the
// payload, one JSON object (a record). The first record of a log is
// {"type":"log","version":1} and may carry the last checkpoint and intent
// numbers of records pruned before it. The others are:
//
//	{"type":"begin","checkpoint":N,"session":S,"front_end":F,"name":M,"time":T,"pid":P,"start":T0}
//	{"type":"intent","checkpoint":N,"intent":I,"changes":[CHANGE...],"time":T,"pid":P,"start":T0}
//	{"type":"done","checkpoint":N,"intent":I,"changes":[HELD...]} the change was made
//	{"type":"abort","checkpoint":N,"intent":I,"reason":R}      it was not
//	{"type":"end","checkpoint":N}
//
// A CHANGE is {"path":P,"before":STATE,"after":STATE}, a STATE
// {"kind":K,"mode":M,"size":Z,"sum":H,"target":L,"data":B64,"zdata":B64,"later":true}, with the
// fields that do not apply left out ("zdata" is the content compressed
// with zstd; "later" says that the intent's done record holds the
// content). A HELD is a CHANGE with only its "after": a content the
// intent named "later", which the done record holds ("changes" is left
// out when there is none). A path or a link target that is not valid UTF-8 is
// stored as "path64" or "target64" instead, its bytes in base64, so that
// every byte comes back as it was (JSON would replace them). A done or
// abort record written by Resolve carries "resolved":true. Readers ignore
// keys they do not know; a change that old readers could not ignore gets
// a new version.
//
// Checkpoint numbers (1, 2, 3...) and intent numbers are the journal's,
// not a process's: they are assigned under the lock, from the records
// before, so several processes (a daemon, MCP servers, runs of the
// filter) can journal the same repository at once and keep one order.
// Every append takes the lock, reads what others appended since it last
// looked, appends its records with one write(2) to the log opened
// O_APPEND, fsyncs when the protocol says, and lets go.
//
// A crash can cut the last frame short. A frame is whole when its length
// is in bounds and its CRC matches; the log reads to its last whole frame.
// What follows is a torn tail when no whole frame starts anywhere after
// it; the next writer truncates it away, under the lock, before it
// appends; readers skip it (a frame being appended looks torn too, to a
// reader that does not take the lock). A bad frame with a whole one after
// it is damage, not a crash: every reader and writer reports it
// (ErrDamaged, with its offset) and none truncates it, since that would
// throw away the records after it. A write that fails part way (a full
// disk) is truncated away by its writer at once, so a torn frame is never
// buried under later ones.
//
// # The head and the index
//
// A process keeps, in memory, the state the log's records make (the last
// checkpoint and intent numbers, the intents with no outcome) and an
// index of where each checkpoint's begin record is, and when it began.
// Close saves them in the file head (to a temporary file renamed over the
// last; no fsync: it is a cache), as does End after each MiB of log
// for a process that keeps the journal open. Open starts from the head
// when the log still holds the frame it names at the offset it names
// (the same file by device and inode, the same record by length and
// CRC), and reads only what follows; otherwise it reads the log from its
// start. Index lists the checkpoints from memory, and Changes reads the
// log from the first checkpoint it is asked for, so an <undo> or a
// <diff> of today's work reads its own records, not the whole log. On a
// log of 1,000 checkpoints of 10 changes each (4.7 MB), Open, Index, the
// last checkpoint's Changes and Close took 1.0 ms from the head and
// 175 ms from the log's start (BenchmarkOpen, load 5 on two CPUs).
// Damage in a record the head covers is found by what reads that record
// (Checkpoints, which lists them all by reading the whole log, or
// Changes), not by Open.
//
// # The protocol: a change that is not journaled does not happen
//
// A caller making a change (one path, or a batch applied together, such
// as exec's changeset) does, in order:
//
//  1. Give each file state its content, as State.Data (or Put it
//     first and name it by Sum); a link's target and a directory need
//     none.
//  2. id, err := cp.Intend(changes): the intent, with both states of
//     every path, is appended and fsynced (with every record before it,
//     the lazy ones of other processes too) before Intend returns. If it
//     fails the caller does not make the change.
//  3. Make the change.
//  4. cp.Done(id), or cp.Abort(id, reason) if the change was not made.
//     These return at once; the tail appends them (a done record with
//     the contents after its intent named "later"), not fsynced: the next
//     Intend, Resolve or Close of any process fsyncs them along. A Done
//     lost to a kill or a power cut is found again by comparing the disk,
//     below.
//
// An intent with no outcome whose process is gone (its pid and start
// time name no running process) is pending: Pending lists them, and the
// caller compares each path on disk with its before and after states
// (Matches helps), and records its verdict with Resolve(id, applied,
// found...), giving an applied intent the contents after it named
// "later", as read from the disk. A process that is still running may be between steps 2 and 4, so its
// intents are never pending. A process killed at each step leaves:
//
//   - in 1: perhaps a temporary file in objects/ and an object nothing
//     names. The log says nothing; the disk is as it was. Both stay until
//     a Prune removes them.
//   - in 2, before the intent's write(2) completes: a torn frame, or
//     nothing. Intend had not returned, so the change was not made; the
//     next writer truncates the torn tail and the journal never knew.
//   - in 2, after the write: a whole intent (durable if the fsync ended;
//     a kill alone loses nothing the kernel took). It is pending; the disk
//     holds the before state; recovery finds that and resolves it not
//     applied.
//   - in 3: a pending intent; the disk holds the before state, the after
//     state, or, for a batch, some paths of each. Recovery resolves it
//     applied when every path holds its after state, not applied when
//     every path holds its before state; a mix (or a path changed since
//     by someone else) is the caller's to settle before it resolves: the
//     store holds every content before (to put back), and a content after
//     that the intent named "later" is on the disk of a path that holds
//     it, where Resolve must be given it.
//   - in 4, before the tail's write of Done: as in 3, every path after:
//     applied, with the contents after the intent named "later" read
//     from the disk and held by the record Resolve writes.
//   - after 4: the outcome is in the log (and on the disk after the next
//     fsync; a power cut before that makes it pending again, and the disk
//     shows it applied). Its checkpoint has no end record, which only says
//     that it was not closed.
//
// So neither the change nor its record is lost: the record exists before
// the change, and its outcome is written after it or recovered from the
// disk.
//
// # Retention
//
// Prune drops the oldest checkpoints a Retention lets go (older than
// MaxAge, or while the journal is over MaxBytes; never the newest Keep,
// nor one with an intent that has no outcome or not ended by a process
// still running, nor any after those), by writing the log anew without
// their records and renaming it into place under the lock: a first
// record carries the last checkpoint and intent numbers, so numbering
// goes on, and every other process reads the new log at its next look
// (it was replaced: catchUp compares the file's identity). Then it
// removes the objects no remaining record names and the temporary files a
// crash left, sparing any changed in the last hour by the clock: Put
// touches an object it finds already stored, and Intend checks under the
// lock that every object it names is there, so an intent never names an
// object a Prune removed. A process killed in a Prune leaves the old log
// or the new one, whole (a rename), and perhaps a temporary log or
// objects not yet removed, which the next Prune removes. The defaults the
// journal's users keep are 30 days or 1 GiB, never the last 20
// checkpoints (DefaultMaxAge, DefaultMaxBytes, DefaultKeep).
package journal
