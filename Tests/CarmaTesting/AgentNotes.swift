import CarmaClient
import CarmaJSON

/// Short agent-memory notes about one fictional person, as an assistant writes them (60–200
/// bytes each), each linked to two or three related notes.
public enum AgentNotes {
    public static let notes: [(id: String, content: String, links: [String])] = [
        ("rosa-01", "Rosa Lindqvist is a structural engineer at Brandt & Ek in Gothenburg.", ["rosa-02", "rosa-03"]),
        ("rosa-02", "Rosa started at Brandt & Ek in August 2024 after six years at a bridge consultancy.", ["rosa-01", "rosa-04"]),
        ("rosa-03", "Rosa's manager is Henrik Ek; they have a one-to-one every other Thursday.", ["rosa-01", "rosa-05"]),
        ("rosa-04", "Before Brandt & Ek, Rosa designed pedestrian bridges in Malmö.", ["rosa-02", "rosa-01"]),
        ("rosa-05", "Rosa wants feedback from Henrik before her promotion review in May.", ["rosa-03", "rosa-06"]),
        ("rosa-06", "Rosa's promotion review was moved to 3 June 2026.", ["rosa-05", "rosa-03"]),
        ("rosa-07", "Rosa is vegetarian and avoids mushrooms, which she says taste of soil.", ["rosa-08", "rosa-09"]),
        ("rosa-08", "Rosa's favourite lunch place is a Lebanese deli near Järntorget.", ["rosa-07", "rosa-09"]),
        ("rosa-09", "When booking team dinners for Rosa, pick places with good vegetarian menus.", ["rosa-07", "rosa-08"]),
        ("rosa-10", "Rosa has a rescue greyhound called Pixel, adopted in 2023.", ["rosa-11", "rosa-12"]),
        ("rosa-11", "Pixel the greyhound is afraid of thunder and needs his vest during storms.", ["rosa-10", "rosa-12"]),
        ("rosa-12", "Rosa's neighbour Ingrid walks Pixel on Wednesdays when Rosa is at the site.", ["rosa-10", "rosa-11"]),
        ("rosa-13", "Rosa runs the Göteborgsvarvet half marathon every spring; her best time is 1:52.", ["rosa-14", "rosa-15"]),
        ("rosa-14", "Rosa trains for running on Tuesday and Saturday mornings along the Göta älv.", ["rosa-13", "rosa-15"]),
        ("rosa-15", "Rosa strained her left calf in April 2026 and paused running for three weeks.", ["rosa-13", "rosa-14"]),
        ("rosa-16", "Rosa's sister Elin lives in Umeå and is expecting her first child in September.", ["rosa-17", "rosa-18"]),
        ("rosa-17", "Rosa plans to visit Elin in Umeå for two weeks after the baby arrives.", ["rosa-16", "rosa-18"]),
        ("rosa-18", "Rosa's parents live in Uppsala; her father restores old sailing boats.", ["rosa-16", "rosa-17"]),
        ("rosa-19", "Rosa prefers written agendas a day before meetings and dislikes surprise calls.", ["rosa-20", "rosa-03"]),
        ("rosa-20", "Rosa's calendar is blocked for deep work every morning from 8 to 10.", ["rosa-19", "rosa-21"]),
        ("rosa-21", "Rosa answers email in two batches, at 11:00 and at 16:00.", ["rosa-20", "rosa-19"]),
        ("rosa-22", "Rosa is learning Spanish with an evening class on Mondays; she is at level A2.", ["rosa-23", "rosa-24"]),
        ("rosa-23", "Rosa wants to hike part of the Camino de Santiago in October 2026.", ["rosa-22", "rosa-24"]),
        ("rosa-24", "Rosa booked flights to Santiago de Compostela for 9 October.", ["rosa-23", "rosa-22"]),
        ("rosa-25", "Rosa is allergic to penicillin; her doctor is Dr. Nilsson at Lundby vårdcentral.", ["rosa-26", "rosa-27"]),
        ("rosa-26", "Rosa's next dental check-up is on 14 July 2026 at 09:30.", ["rosa-25", "rosa-27"]),
        ("rosa-27", "Rosa takes vitamin D in winter on her doctor's advice.", ["rosa-25", "rosa-26"]),
        ("rosa-28", "Rosa leads the load review for the new Hisingen footbridge, due in November.", ["rosa-29", "rosa-01"]),
        ("rosa-29", "The Hisingen footbridge uses a cable-stayed design with a 90 metre main span.", ["rosa-28", "rosa-30"]),
        ("rosa-30", "Rosa worries the Hisingen steel supplier will deliver the cables late.", ["rosa-29", "rosa-28"]),
        ("rosa-31", "Rosa's birthday is 2 February; she likes dark chocolate and books on architecture.", ["rosa-32", "rosa-18"]),
        ("rosa-32", "For Rosa's birthday last year her team gave her a book on Sverre Fehn.", ["rosa-31", "rosa-01"]),
    ]

    /// The metadata note `index` is stored with: who it is about and the day it was learned.
    public static func metadata(_ index: Int) -> JSONObject {
        ["person": "Rosa Lindqvist", "learned": .string("2026-0\(1 + index % 9)-1\(index % 10)")]
    }

    /// Stores every note (tags `rosa` and `memory`, the day it was learned in metadata).
    public static func store(in api: CarmaAPI) throws {
        for (index, note) in Self.notes.enumerated() {
            let body: JSONValue = [
                "content": .string(note.content), "links": JSONValue(note.links), "tags": ["rosa", "memory"],
                "metadata": .object(Self.metadata(index)),
            ]
            let response = try api.put(note.id, body)
            guard response.status == 201 else { throw ClientError("PUT \(note.id): \(response.status) \(response.text)") }
        }
    }
}
