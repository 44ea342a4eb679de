import FragmentCore
import Foundation
import Synchronization
import Testing

@Suite("Worker")
struct WorkerTests {
    @Test("a worker runs its body until it finishes, then says it stopped")
    func finishes() {
        let worker = Worker(name: "count")
        let count = Atomic<Int>(0)
        let done = DispatchSemaphore(value: 0)
        worker.start {
            if count.add(1, ordering: .relaxed).newValue == 5 {
                done.signal()
                return .finished
            }
            return .worked
        }
        done.wait()
        worker.stop()
        let counted = count.load(ordering: .relaxed)
        #expect(counted == 5)
        #expect(worker.statistics.passes == 4)
        #expect(!worker.statistics.running)
    }

    @Test("an idle worker sleeps until woken, and stop ends the sleep")
    func wakeAndStop() {
        let worker = Worker(name: "idle")
        let passes = Atomic<Int>(0)
        let second = DispatchSemaphore(value: 0)
        worker.start {
            if passes.add(1, ordering: .relaxed).newValue == 2 { second.signal() }
            return .idle
        }
        worker.wake()
        second.wait()
        let seen = passes.load(ordering: .relaxed)
        #expect(seen >= 2)
        worker.stop()
        #expect(!worker.statistics.running)
        let after = passes.load(ordering: .relaxed)
        worker.wake()
        let later = passes.load(ordering: .relaxed)
        #expect(later == after, "no pass after stop")
    }

    @Test("stop runs onStop so a body waiting on its own condition can end, and is idempotent")
    func onStop() {
        let worker = Worker(name: "waiting")
        let condition = NSCondition()
        let released = Atomic<Bool>(false)
        worker.start(onStop: {
            condition.lock()
            released.store(true, ordering: .relaxed)
            condition.broadcast()
            condition.unlock()
        }) {
            condition.lock()
            while !released.load(ordering: .relaxed) { condition.wait() }
            condition.unlock()
            return .finished
        }
        worker.stop()
        worker.stop()
        #expect(!worker.statistics.running)
    }

    @Test("a worker never started stops at once; a stopped worker does not start")
    func neverStarted() {
        let worker = Worker(name: "unused")
        worker.stop()
        let ran = Atomic<Bool>(false)
        worker.start {
            ran.store(true, ordering: .relaxed)
            return .finished
        }
        let didRun = ran.load(ordering: .relaxed)
        #expect(!didRun)
        #expect(!worker.statistics.running)
    }

    @Test("shutdown steps run in the order declared")
    func order() {
        let steps = Mutex<[Int]>([])
        ShutdownOrder([{ steps.withLock { $0.append(1) } }, { steps.withLock { $0.append(2) } }, { steps.withLock { $0.append(3) } }]).run()
        #expect(steps.withLock { $0 } == [1, 2, 3])
    }
}
