"""Two threads: one writes part-a.txt (input.txt's lines reversed), the other part-b.txt (names.txt
upper-cased)."""
import threading


def part_a() -> None:
    with open("part-a.txt", "w") as f:
        f.writelines(reversed(open("input.txt").readlines()))


def part_b() -> None:
    with open("part-b.txt", "w") as f:
        f.write(open("names.txt").read().upper())


threads = [threading.Thread(target=part_a), threading.Thread(target=part_b)]
for t in threads:
    t.start()
for t in threads:
    t.join()
