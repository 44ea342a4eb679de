import FragmentCore
import DreamEngine
import Testing

@Suite("Scheduler")
struct SchedulerTests {
    let configuration = DreamConfiguration(baseInterval: 60, growth: 0.5, maxInterval: 150, idleDelay: 2)

    @Test("the interval grows with each clean cycle, capped, and resets when a cycle finds damage")
    func progressiveInterval() {
        var scheduler = Scheduler(configuration: self.configuration, now: 0)
        #expect(scheduler.nextRunAt == 60)
        var now = 0.0
        var intervals: [Double] = []
        for _ in 0..<5 {
            now = scheduler.nextRunAt
            #expect(scheduler.decide(now: now, manualRequested: false, readyRepairs: 0, idleFor: 0) == .start(.scheduled))
            scheduler.cycleStarted()
            scheduler.cycleFinished(now: now + 1, foundDamage: false)
            intervals.append(scheduler.nextRunAt - (now + 1))
        }
        #expect(intervals == [90, 120, 150, 150, 150])
        scheduler.cycleStarted()
        scheduler.cycleFinished(now: 1000, foundDamage: true)
        #expect(scheduler.cleanStreak == 0)
        #expect(scheduler.nextRunAt == 1060)
    }

    @Test("before the interval elapses it waits, unless asked")
    func waitsUntilDue() {
        let scheduler = Scheduler(configuration: self.configuration, now: 0)
        #expect(scheduler.decide(now: 30, manualRequested: false, readyRepairs: 0, idleFor: 100) == .wait(until: 60))
        #expect(scheduler.decide(now: 30, manualRequested: true, readyRepairs: 0, idleFor: 0) == .start(.manual))
    }

    @Test("due repairs start a cycle early only once the service has been idle long enough")
    func idleStart() {
        var scheduler = Scheduler(configuration: self.configuration, now: 0)
        #expect(scheduler.decide(now: 10, manualRequested: false, readyRepairs: 5, idleFor: 1) == .wait(until: 60))
        #expect(scheduler.decide(now: 10, manualRequested: false, readyRepairs: 0, idleFor: 10) == .wait(until: 60))
        #expect(scheduler.decide(now: 10, manualRequested: false, readyRepairs: 5, idleFor: 2) == .start(.idle))
        scheduler.cycleStarted()
        #expect(scheduler.decide(now: 11, manualRequested: true, readyRepairs: 5, idleFor: 9) == .wait(until: .infinity))
        scheduler.cycleFinished(now: 12, foundDamage: true)
        // Not straight away again: at least the idle gap after the last cycle.
        #expect(scheduler.decide(now: 12.5, manualRequested: false, readyRepairs: 5, idleFor: 9) == .wait(until: 72))
        #expect(scheduler.decide(now: 13.5, manualRequested: false, readyRepairs: 5, idleFor: 9) == .start(.idle))
    }

    @Test("retry delays double per attempt up to the cap")
    func retryDelays() {
        let configuration = DreamConfiguration(retryBase: 10, retryCap: 70)
        #expect((1...5).map { configuration.retryDelay(attempt: $0) } == [10, 20, 40, 70, 70])
    }
}
