/*
 * election.pml -- Raft leader election: election safety and persistence of votes.
 *
 * Property checked (assertion, after every step that makes a leader):
 *   ELECTION SAFETY: at most one server becomes leader in any term, over the whole run
 *   (a ghost bitmask remembers every leader of every term, across crashes).
 *
 * Bounds (exhaustive within them):
 *   - 3 servers; terms 1..MAXTERM (default 5); no log (the vote's log check is modelled in
 *     log.pml; it only removes votes, so leaving it out here over-approximates).
 *   - Network: a SET of messages. A message, once sent, stays in the set and may be delivered
 *     at any later time, any number of times, or never: loss, duplication and reordering.
 *     Messages: RequestVote(term, candidate) and VoteGranted(term, candidate, voter).
 *     Refusals carry nothing a voter needs, so they are not modelled.
 *   - Crash and restart of any server at any time, any number of times: volatile state
 *     (role, votes received, and anything not yet persisted) is lost; the restarted server
 *     is a follower with its persisted currentTerm and votedFor.
 *   - Pre-vote is not modelled: it only stops some campaigns (it is a liveness feature), so
 *     leaving it out only adds behaviours.
 *
 * Correct ordering (as in src/raft): a server persists currentTerm and votedFor BEFORE the
 * message that depends on them leaves (the node loop persists the Ready, then sends).
 *
 * Broken variants (run.sh asserts spin finds a violation for each):
 *   -DBUG_VOTE_TWICE            a voter grants a second candidate in the same term.
 *   -DBUG_REPLY_BEFORE_PERSIST  a voter sends its grant first and persists later, in a
 *                               separate step; a crash in between forgets the vote.
 */

#define N 3
#ifndef MAXTERM
#define MAXTERM 5
#endif
#define NONE 255
#define FOLLOWER 0
#define CANDIDATE 1
#define LEADER 2

#define IDX(t, c) ((t) * N + (c))   /* (term, candidate) slot */
#define COUNT(m) (((m) & 1) + (((m) >> 1) & 1) + (((m) >> 2) & 1))
#define QUORUM 2

/* volatile state of each server */
byte term[N];
byte voted[N];
byte role[N];
/* persisted state of each server: what survives a crash */
byte dterm[N];
byte dvoted[N];
/* the network: sets of messages ever sent */
bool requested[(MAXTERM + 1) * N];  /* RequestVote(t, c) */
byte granted[(MAXTERM + 1) * N];    /* VoteGranted(t, c): bitmask of the voters */
/* ghost: every server that ever became leader in term t (bitmask) */
byte leaders[MAXTERM + 1];
bool election_safety = true;

#define PERSIST(s) dterm[s] = term[s]; dvoted[s] = voted[s]

/*
 * Guarded choices: each action is one `if` whose alternatives list the parameter values for
 * which it is enabled and changes something, so disabled actions cost nothing.
 * The lists cover MAXTERM <= 5.
 */
#define ONE_SERVER(C) :: C(0) -> s = 0 :: C(1) -> s = 1 :: C(2) -> s = 2

#define CAN_CAMPAIGN(x) (role[x] != LEADER && term[x] < MAXTERM)
/* the candidate's own vote plus the grants of its term delivered to it */
#define CAN_WIN(x) (role[x] == CANDIDATE && COUNT((1 << x) | granted[IDX(term[x], x)]) >= QUORUM)
#define UNPERSISTED(x) (dterm[x] != term[x] || dvoted[x] != voted[x])
#define CRASH_CHANGES(x) (role[x] != FOLLOWER || UNPERSISTED(x))

/* RequestVote(T, C) delivered to S, when it can change S */
#ifdef BUG_VOTE_TWICE
#define MAY_VOTE(T, C, S) (voted[S] != C)
#else
#define MAY_VOTE(T, C, S) (voted[S] == NONE)
#endif
#define RV_OK(T, C, S) (T <= MAXTERM && requested[IDX(T, C)] && \
    (T > term[S] || (T == term[S] && MAY_VOTE(T, C, S))))
#define RV_PICK(T, C, S) :: RV_OK(T, C, S) -> t = T; c = C; s = S
#define RV_TERM(T) RV_PICK(T, 0, 1) RV_PICK(T, 0, 2) RV_PICK(T, 1, 0) \
                   RV_PICK(T, 1, 2) RV_PICK(T, 2, 0) RV_PICK(T, 2, 1)
#define RV_ALL RV_TERM(1) RV_TERM(2) RV_TERM(3) RV_TERM(4) RV_TERM(5)

/*
 * Canonical network: once every server, volatile and persisted, is past term a, no message
 * of term a can change anything any more; dropping them merges states with the same future.
 */
inline gc_network() {
    d_step {
        for (a : 1 .. MAXTERM) {
            if
            :: a < term[0] && a < term[1] && a < term[2] &&
               a < dterm[0] && a < dterm[1] && a < dterm[2] ->
                for (b : 0 .. N - 1) {
                    requested[IDX(a, b)] = false;
                    granted[IDX(a, b)] = 0
                }
            :: else -> skip
            fi
        }
        a = 0; b = 0
    }
}

init {
    byte i;
    for (i : 0 .. N - 1) {
        voted[i] = NONE;
        dvoted[i] = NONE
    }
    run raft()
}

proctype raft() {
    byte s, c, t, a, b;
end:
    do
    /* election timeout: become candidate in the next term, vote for self, persist, ask */
    :: atomic {
        if ONE_SERVER(CAN_CAMPAIGN) fi;
        term[s]++;
        voted[s] = s;
        role[s] = CANDIDATE;
        PERSIST(s);
        requested[IDX(term[s], s)] = true;
        s = 0;
        gc_network()
    }
    /* deliver RequestVote(t, c) to server s */
    :: atomic {
        if RV_ALL fi;
        if
        :: t > term[s] -> term[s] = t; voted[s] = NONE; role[s] = FOLLOWER
        :: else -> skip
        fi;
        if
        :: MAY_VOTE(t, c, s) ->
            voted[s] = c;
#ifndef BUG_REPLY_BEFORE_PERSIST
            PERSIST(s);
#endif
            granted[IDX(t, c)] = granted[IDX(t, c)] | (1 << s)
        :: else ->
#ifndef BUG_REPLY_BEFORE_PERSIST
            PERSIST(s)
#else
            skip
#endif
        fi;
        s = 0; c = 0; t = 0;
        gc_network()
    }
    /* candidate s has a quorum of grants for its term: it becomes leader */
    :: atomic {
        if ONE_SERVER(CAN_WIN) fi;
        role[s] = LEADER;
        if
        :: (leaders[term[s]] & ~(1 << s)) != 0 -> election_safety = false
        :: else -> skip
        fi;
        leaders[term[s]] = leaders[term[s]] | (1 << s);
        s = 0;
        assert(election_safety)
    }
#ifdef BUG_REPLY_BEFORE_PERSIST
    /* the late fsync of the broken variant */
    :: atomic { if ONE_SERVER(UNPERSISTED) fi; PERSIST(s); s = 0; gc_network() }
#endif
    /* crash and restart: keep only what was persisted */
    :: atomic {
        if ONE_SERVER(CRASH_CHANGES) fi;
        term[s] = dterm[s];
        voted[s] = dvoted[s];
        role[s] = FOLLOWER;
        s = 0;
        gc_network()
    }
    od
}
