/*
 * log.pml -- Raft log replication and commitment: log matching, leader completeness, state
 * machine safety (including the Figure 8 scenario), and persistence of acknowledged entries.
 * A leader's new entry may be sent before the leader persists it (the leader's exception of
 * the Ready contract, src/raft/mod.rs); the leader's own copy counts toward commit only after
 * its persist step, and it appends nothing new before that (the node takes no new Ready until
 * the last one is durable).
 *
 * Properties checked (assertions; each failing one names itself):
 *   LOG MATCHING: if two servers' logs hold an entry with the same index and term, the logs are
 *     identical up to that index (checked after every step that changes a log).
 *   STATE MACHINE SAFETY: an index, once committed, is never committed with another entry.
 *   LEADER COMPLETENESS: an entry committed in term T is in the log of every leader of every
 *     term > T (checked when a leader is elected and when an entry commits).
 *   ELECTION SAFETY (as a side assertion): one leader per term.
 *
 * Bounds (exhaustive within them):
 *   - 3 servers; terms 1..MAXTERM (default 4: the 3-server Figure 8 scenario needs a fourth
 *     term, see README); logs of at most MAXLOG entries (default 2). An entry is its term (two
 *     entries with the same index and term are the same entry, as in Raft).
 *   - Network: a SET of messages; a message, once sent, may be delivered at any later time, any
 *     number of times, or never (loss, duplication, reordering, stale delivery):
 *       RequestVote(term, candidate, lastLogTerm, lastLogIndex), VoteGranted(term, cand, voter),
 *       AppendEntries(term, prevIndex, lastIndex): the entries are those of the term's leader,
 *         whose log only grows during its term, so any range it could ever send is deliverable
 *         (this over-approximates the real leader, which sends from nextIndex only),
 *       AppendAck(term, follower, matchIndex): the leader counts the highest one sent.
 *     Refusals only carry terms and backtracking hints; leaders never step down on them
 *     (a leader that keeps going is a behaviour the real network also allows).
 *   - With -DCRASH: crash and restart of any server at any time; volatile state (role, votes
 *     received, anything not yet persisted) is lost. A crash is also the only way a leader
 *     steps down without hearing of a higher term (the check-quorum step-down), so the
 *     crash-free run does not cover that step-down; the crash run does.
 *   - As run by run.sh: crash-free with terms <= 4 (--quick: <= 3), and with -DCRASH terms
 *     <= 3 (--quick: <= 2); logs <= 2 entries in both (4,347,265 and 5,746,656 states).
 *   - Not modelled: followers' commitIndex (commitment is decided by the leader; a follower
 *     applies only what a leader told it was committed), snapshots, membership changes,
 *     ReadIndex, pre-vote (liveness only), proposal payloads (an entry is its term).
 *
 * Broken variants (run.sh asserts spin finds the named violation for each):
 *   -DBUG_COMMIT_OLD_TERM          the leader commits an entry of an earlier term by counting
 *                                  replicas (Figure 8)            -> leader completeness
 *   -DBUG_NO_CONSISTENCY_CHECK     a follower appends without comparing prevLogTerm
 *                                                                 -> log matching
 *   -DBUG_VOTE_WITHOUT_LOG_CHECK   a voter grants without the up-to-date check
 *                                                                 -> leader completeness
 *   -DBUG_TRUNCATE_ON_STALE_APPEND a follower drops everything after prevIndex even when the
 *                                  entries match (a stale, shorter append erases acked entries)
 *                                                                 -> leader completeness
 *   -DCRASH -DBUG_ACK_BEFORE_PERSIST a follower acknowledges appended entries before they are
 *                                  durable; a crash loses them    -> leader completeness
 *   -DCRASH -DBUG_LEADER_COUNTS_UNPERSISTED the leader counts its own new entry toward commit
 *                                  before it is durable (as a node would that stepped its
 *                                  followers' answers during its own sync); a crash loses it
 *                                                                 -> leader completeness
 */

#define N 3
#ifndef MAXTERM
#define MAXTERM 4
#endif
#ifndef MAXLOG
#define MAXLOG 2
#endif
#define NONE 255        /* printed as 255 in traces */
#define FOLLOWER 0
#define CANDIDATE 1
#define LEADER 2
#define QUORUM 2

#define TS(t, s) ((t) * N + (s))                 /* (term, server) slot */
#define LOG(s, i) log[(s) * MAXLOG + (i) - 1]    /* entry i (1-based) of server s */
#define DLOG(s, i) dlog[(s) * MAXLOG + (i) - 1]
#define LLOG(t, i) leader_log[(t) * MAXLOG + (i) - 1]
#define LAST_TERM(s) (loglen[s] == 0 -> 0 : LOG(s, loglen[s]))
#define COUNT(m) (((m) & 1) + (((m) >> 1) & 1) + (((m) >> 2) & 1))

/* volatile state */
byte term[N];
byte voted[N];
byte role[N];
byte log[N * MAXLOG];
byte loglen[N];
#ifdef CRASH
/* persisted state */
byte dterm[N];
byte dvoted[N];
byte dlog[N * MAXLOG];
byte dloglen[N];
#endif
/* the network (sets of messages ever sent) */
bool requested[(MAXTERM + 1) * N];
byte rv_last_term[(MAXTERM + 1) * N];
byte rv_last_index[(MAXTERM + 1) * N];
byte granted[(MAXTERM + 1) * N];
byte leader_of[MAXTERM + 1];                 /* NONE, or the leader of term t */
byte leader_log[(MAXTERM + 1) * MAXLOG];     /* the log of term t's leader */
byte leader_len[MAXTERM + 1];
byte acked[(MAXTERM + 1) * N];               /* highest matchIndex acked in term t */
/* ghosts */
byte committed[MAXLOG + 1];                  /* 0, or the term of the entry committed at i */
byte committed_in[MAXLOG + 1];               /* the first term in which index i committed */
bool log_matching = true;
bool state_machine_safety = true;
bool leader_completeness = true;
bool election_safety = true;

#ifdef CRASH
#define PERSIST(s) d_step { \
    dterm[s] = term[s]; dvoted[s] = voted[s]; dloglen[s] = loglen[s]; \
    for (k : 1 .. MAXLOG) { DLOG(s, k) = LOG(s, k) }; k = 0 }
#else
#define PERSIST(s) skip
#endif

/* the voter's log check: the candidate's last entry is at least as up to date */
#ifdef BUG_VOTE_WITHOUT_LOG_CHECK
#define CANDIDATE_LOG_OK(t, c, s) true
#else
#define CANDIDATE_LOG_OK(t, c, s) (rv_last_term[TS(t, c)] > LAST_TERM(s) || \
    (rv_last_term[TS(t, c)] == LAST_TERM(s) && rv_last_index[TS(t, c)] >= loglen[s]))
#endif

/* the commit rule: only an entry of the leader's own term commits by counting */
#ifdef BUG_COMMIT_OLD_TERM
#define COMMIT_TERM_OK(s, p) true
#else
#define COMMIT_TERM_OK(s, p) (LOG(s, p) == term[s])
#endif

/*
 * Guarded choices. Every action is one `if` whose alternatives enumerate the parameter values
 * for which the action is enabled AND changes something, so a disabled action costs nothing
 * and no transition loops back to its own state. The lists cover MAXTERM <= 5, MAXLOG <= 3.
 */
#define ONE_SERVER(C) :: C(0) -> s = 0 :: C(1) -> s = 1 :: C(2) -> s = 2

#define CAN_CAMPAIGN(x) (role[x] != LEADER && term[x] < MAXTERM)
#define CAN_WIN(x) (role[x] == CANDIDATE && COUNT((1 << x) | granted[TS(term[x], x)]) >= QUORUM)
/* one append at a time: the node takes no new input until the last append is durable */
#define CAN_PROPOSE(x) (role[x] == LEADER && loglen[x] < MAXLOG && SYNCED(x))
#ifdef BUG_LEADER_COUNTS_UNPERSISTED
#define SYNCED(x) (!UNPERSISTED(x))
#define CAN_SYNC(x) (role[x] == LEADER && UNPERSISTED(x))
#else
#define SYNCED(x) (acked[TS(term[x], x)] == loglen[x])
#define CAN_SYNC(x) (role[x] == LEADER && acked[TS(term[x], x)] < loglen[x])
#endif

/* RequestVote(T, C) delivered to S: only when it can change S (newer term, or no vote yet) */
#define RV_OK(T, C, S) (T <= MAXTERM && requested[TS(T, C)] && \
    (T > term[S] || (T == term[S] && voted[S] == NONE)))
#define RV_PICK(T, C, S) :: RV_OK(T, C, S) -> t = T; c = C; s = S
#define RV_TERM(T) RV_PICK(T, 0, 1) RV_PICK(T, 0, 2) RV_PICK(T, 1, 0) \
                   RV_PICK(T, 1, 2) RV_PICK(T, 2, 0) RV_PICK(T, 2, 1)
#define RV_ALL RV_TERM(1) RV_TERM(2) RV_TERM(3) RV_TERM(4) RV_TERM(5)

/* AppendEntries(T, prev=P, last=Q) delivered to S */
#define AE_OK(T, S, P, Q) (T <= MAXTERM && leader_of[T] != NONE && leader_of[T] != S && \
    Q <= leader_len[T] && T >= term[S])
#define AE_PICK(T, S, P, Q) :: AE_OK(T, S, P, Q) -> t = T; s = S; p = P; q = Q
#define AE_RANGES(T, S) AE_PICK(T, S, 0, 0) AE_PICK(T, S, 0, 1) AE_PICK(T, S, 1, 1) \
    AE_PICK(T, S, 0, 2) AE_PICK(T, S, 1, 2) AE_PICK(T, S, 2, 2) AE_PICK(T, S, 0, 3) \
    AE_PICK(T, S, 1, 3) AE_PICK(T, S, 2, 3) AE_PICK(T, S, 3, 3)
#define AE_TERM(T) AE_RANGES(T, 0) AE_RANGES(T, 1) AE_RANGES(T, 2)
#define AE_ALL AE_TERM(1) AE_TERM(2) AE_TERM(3) AE_TERM(4) AE_TERM(5)

/* the leader S commits up to index P: a quorum acked P in S's term, and P is not yet
 * committed with this entry (a different committed entry is a violation, so it is enabled) */
#define ACKED_P(S, P, F) (acked[TS(term[S], F)] >= P)
#define COMMIT_OK(S, P) (role[S] == LEADER && P <= loglen[S] && COMMIT_TERM_OK(S, P) && \
    committed[P] != LOG(S, P) && ACKED_P(S, P, 0) + ACKED_P(S, P, 1) + ACKED_P(S, P, 2) >= QUORUM)
#define COMMIT_PICK(S, P) :: COMMIT_OK(S, P) -> s = S; p = P
#define COMMIT_SERVER(S) COMMIT_PICK(S, 1) COMMIT_PICK(S, 2) COMMIT_PICK(S, 3)
#define COMMIT_ALL COMMIT_SERVER(0) COMMIT_SERVER(1) COMMIT_SERVER(2)

#ifdef CRASH
#define ENTRY_DIFFERS(x, i) (MAXLOG >= i && LOG(x, i) != DLOG(x, i))
#define UNPERSISTED(x) (dterm[x] != term[x] || dvoted[x] != voted[x] || \
    dloglen[x] != loglen[x] || ENTRY_DIFFERS(x, 1) || ENTRY_DIFFERS(x, 2) || ENTRY_DIFFERS(x, 3))
#define CRASH_CHANGES(x) (role[x] != FOLLOWER || UNPERSISTED(x))
#endif

/*
 * Canonical network: once every server (and, with crashes, every server's persisted state)
 * is past term a, no message of term a can change anything (every receiver rejects it, no
 * server is candidate or leader in term a any more), so those messages are dropped. This only
 * merges states that have the same future; the ghost record of term a's leader is kept.
 */
#ifdef CRASH
#define DURABLY_PAST(a) (a < dterm[0] && a < dterm[1] && a < dterm[2])
#else
#define DURABLY_PAST(a) true
#endif
inline gc_network() {
    d_step {
        for (a : 1 .. MAXTERM) {
            if
            :: a < term[0] && a < term[1] && a < term[2] && DURABLY_PAST(a) ->
                for (b : 0 .. N - 1) {
                    requested[TS(a, b)] = false;
                    rv_last_term[TS(a, b)] = 0;
                    rv_last_index[TS(a, b)] = 0;
                    granted[TS(a, b)] = 0;
                    acked[TS(a, b)] = 0
                }
            :: else -> skip
            fi
        }
        a = 0; b = 0
    }
}

/* LOG MATCHING over every pair of servers */
inline check_log_matching() {
    d_step {
        for (a : 0 .. N - 1) {
            for (b : 0 .. N - 1) {
                for (i : 1 .. MAXLOG) {
                    if
                    :: a < b && i <= loglen[a] && i <= loglen[b] && LOG(a, i) == LOG(b, i) ->
                        for (j : 1 .. i) {
                            if
                            :: LOG(a, j) != LOG(b, j) -> log_matching = false
                            :: else -> skip
                            fi
                        }
                    :: else -> skip
                    fi
                }
            }
        }
        a = 0; b = 0; i = 0; j = 0
    }
    assert(log_matching)
}

/* LEADER COMPLETENESS: every committed entry is in every later term's leader's log */
inline check_leader_completeness() {
    d_step {
        for (i : 1 .. MAXLOG) {
            for (a : 1 .. MAXTERM) {
                if
                :: committed[i] != 0 && a > committed_in[i] && leader_of[a] != NONE &&
                   (leader_len[a] < i || LLOG(a, i) != committed[i]) ->
                    leader_completeness = false
                :: else -> skip
                fi
            }
        }
        a = 0; i = 0
    }
    assert(leader_completeness)
}

init {
    byte x;
    for (x : 0 .. N - 1) {
        voted[x] = NONE;
#ifdef CRASH
        dvoted[x] = NONE;
#endif
    }
    for (x : 0 .. MAXTERM) {
        leader_of[x] = NONE
    }
    run raft()
}

proctype raft() {
    byte s, c, t, p, q, a, b, i, j, k;
end:
    do
    /* election timeout: next term, vote for self, persist, send RequestVote */
    :: atomic {
        if ONE_SERVER(CAN_CAMPAIGN) fi;
        term[s]++;
        voted[s] = s;
        role[s] = CANDIDATE;
        PERSIST(s);
        requested[TS(term[s], s)] = true;
        rv_last_term[TS(term[s], s)] = LAST_TERM(s);
        rv_last_index[TS(term[s], s)] = loglen[s];
        printf("MSC: S%d campaigns in term %d\n", s, term[s]);
        s = 0;
        gc_network()
    }
    /* deliver RequestVote(t, c) to s; grant if the term, the vote and the log allow */
    :: atomic {
        if RV_ALL fi;
        if
        :: t > term[s] -> term[s] = t; voted[s] = NONE; role[s] = FOLLOWER
        :: else -> skip
        fi;
        if
        :: voted[s] == NONE && CANDIDATE_LOG_OK(t, c, s) ->
            voted[s] = c;
            PERSIST(s);
            granted[TS(t, c)] = granted[TS(t, c)] | (1 << s)
        :: else -> PERSIST(s)
        fi;
        printf("MSC: S%d receives RequestVote(term %d) from S%d: term %d, voted for %d\n", s, t, c, term[s], voted[s]);
        s = 0; c = 0; t = 0;
        gc_network()
    }
    /* a candidate receives the grants of its term; a quorum makes it leader */
    :: atomic {
        if ONE_SERVER(CAN_WIN) fi;
        t = term[s];
        role[s] = LEADER;
        if
        :: leader_of[t] != NONE -> election_safety = false
        :: else -> skip
        fi;
        assert(election_safety);
        leader_of[t] = s;
        leader_len[t] = loglen[s];
        for (i : 1 .. MAXLOG) { LLOG(t, i) = LOG(s, i) };
        acked[TS(t, s)] = loglen[s];
        printf("MSC: S%d becomes leader of term %d with log [%d %d], length %d\n", s, term[s], LOG(s, 1), LOG(s, MAXLOG), loglen[s]);
        i = 0; t = 0; s = 0;
        check_leader_completeness()
    }
    /* the leader appends a new entry of its term; it may be sent at once (the leader's
     * exception of the Ready contract), before the leader persists it */
    :: atomic {
        if ONE_SERVER(CAN_PROPOSE) fi;
        t = term[s];
        loglen[s]++;
        LOG(s, loglen[s]) = t;
        LLOG(t, loglen[s]) = t;
        leader_len[t] = loglen[s];
#ifdef BUG_LEADER_COUNTS_UNPERSISTED
        acked[TS(t, s)] = loglen[s];
#endif
        printf("MSC: S%d (leader of term %d) appends an entry at index %d\n", s, t, loglen[s]);
        t = 0; s = 0
    }
    /* the leader's sync: only now does its own copy count toward commit (the core counts it
     * at append, but no commit leaves the node before the sync: see src/raft/mod.rs) */
    :: atomic {
        if ONE_SERVER(CAN_SYNC) fi;
        PERSIST(s);
        acked[TS(term[s], s)] = loglen[s];
        printf("MSC: S%d (leader of term %d) persists its log up to %d\n", s, term[s], loglen[s]);
        s = 0
    }
    /* deliver AppendEntries(t, prev=p, last=q) from term t's leader to s */
    :: atomic {
        if AE_ALL fi;
        if
        :: t > term[s] -> term[s] = t; voted[s] = NONE
        :: else -> skip
        fi;
        role[s] = FOLLOWER;
        if
#ifdef BUG_NO_CONSISTENCY_CHECK
        :: p <= loglen[s] ->
#else
        :: p == 0 || (p <= loglen[s] && LOG(s, p) == LLOG(t, p)) ->
#endif
#ifdef BUG_TRUNCATE_ON_STALE_APPEND
            loglen[s] = p;
#endif
            for (i : p + 1 .. q) {
                if
                :: i <= loglen[s] && LOG(s, i) != LLOG(t, i) -> loglen[s] = i - 1
                :: else -> skip
                fi;
                if
                :: i > loglen[s] -> LOG(s, i) = LLOG(t, i); loglen[s] = i
                :: else -> skip
                fi
            };
            /* entries beyond loglen are garbage: clear them to keep states canonical */
            for (i : 1 .. MAXLOG) {
                if
                :: i > loglen[s] -> LOG(s, i) = 0
                :: else -> skip
                fi
            };
            i = 0;
#ifndef BUG_ACK_BEFORE_PERSIST
            PERSIST(s);
#endif
            if
            :: q > acked[TS(t, s)] -> acked[TS(t, s)] = q
            :: else -> skip
            fi
        :: else -> PERSIST(s)
        fi;
        printf("MSC: S%d receives AppendEntries(term %d, entries %d..%d): term %d, log [%d %d], length %d\n", s, t, p + 1, q, term[s], LOG(s, 1), LOG(s, MAXLOG), loglen[s]);
        s = 0; t = 0; p = 0; q = 0;
        gc_network();
        check_log_matching()
    }
    /* the leader commits up to index p once a quorum acked it in its term */
    :: atomic {
        if COMMIT_ALL fi;
        for (i : 1 .. p) {
            if
            :: committed[i] != 0 && committed[i] != LOG(s, i) -> state_machine_safety = false
            :: committed[i] == 0 -> committed[i] = LOG(s, i); committed_in[i] = term[s]
            :: else -> skip
            fi
        };
        printf("MSC: S%d commits up to index %d in term %d (entry of term %d)\n", s, p, term[s], LOG(s, p));
        i = 0; s = 0; p = 0;
        assert(state_machine_safety);
        check_leader_completeness()
    }
#ifdef CRASH
#ifdef BUG_ACK_BEFORE_PERSIST
    /* the late fsync of the broken variant */
    :: atomic { if ONE_SERVER(UNPERSISTED) fi; PERSIST(s); printf("MSC: S%d persists\n", s); s = 0; gc_network() }
#endif
    /* crash and restart: keep only what was persisted */
    :: atomic {
        if ONE_SERVER(CRASH_CHANGES) fi;
        term[s] = dterm[s];
        voted[s] = dvoted[s];
        loglen[s] = dloglen[s];
        for (i : 1 .. MAXLOG) { LOG(s, i) = DLOG(s, i) };
        i = 0;
        role[s] = FOLLOWER;
        printf("MSC: S%d crashes and restarts: term %d, log length %d\n", s, term[s], loglen[s]);
        s = 0;
        gc_network()
    }
#endif
    od
}
