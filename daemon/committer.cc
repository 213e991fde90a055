#include "daemon/committer.h"

#include "daemon/log.h"

namespace triaged {
namespace {

class AtLeastOnceCommitter final : public Committer {
 public:
  AtLeastOnceCommitter(KafkaClient& client, PartitionTable& partitions, const InputsConfig& inputs)
      : client_(client), partitions_(partitions), inputs_(inputs) {}

  bool BeforeProduce() override { return true; }
  // The hold stays: offsets are not committed past an item that was not delivered.
  void ProduceFailed() override {}

  bool Commit(bool sync, const std::set<int32_t>* only, milliseconds timeout) override {
    Result<void> r = client_.Commit(partitions_.Committable(inputs_, only, false), sync, timeout);
    if (!r.ok()) log::Warn("commit failed", {{"error", r.error().message}});
    return r.ok();
  }

  const std::string& rewind_reason() const override { return none_; }
  bool Reset() override { return true; }

 private:
  KafkaClient& client_;
  PartitionTable& partitions_;
  const InputsConfig inputs_;  // a copy: a reload replaces the config, never its inputs
  const std::string none_;
};

class TransactionalCommitter final : public Committer {
 public:
  TransactionalCommitter(KafkaClient& client, PartitionTable& partitions,
                         const InputsConfig& inputs, ErrorCounter count_error)
      : client_(client),
        partitions_(partitions),
        inputs_(inputs),
        count_error_(std::move(count_error)) {}

  bool BeforeProduce() override { return rewind_why_.empty() && Begin(); }
  void ProduceFailed() override { failed_ = true; }

  // Routed items, dead letters and decision records of the open transaction, with the input
  // offsets they make safe, committed atomically. Nothing to commit, no transaction. Always
  // waits: a transaction is committed or it is not.
  bool Commit(bool /*sync*/, const std::set<int32_t>* /*only*/, milliseconds timeout) override {
    if (!rewind_why_.empty()) return false;
    if (open_) {
      // Every message of the transaction acknowledged, so the holds it pinned are released.
      client_.Flush(timeout);
      if (failed_ || client_.InFlight() > 0) {
        rewind_why_ = "a message of the transaction was not delivered";
        return false;
      }
    }
    const TopicPartitions offsets = partitions_.Committable(inputs_, nullptr, true);
    if (!open_ && offsets.empty()) return true;
    if (!Begin()) return false;
    if (!offsets.empty()) {
      if (TxnResult r = client_.SendOffsetsToTransaction(offsets, timeout); !r.ok()) {
        Failed(r.error(), "send_offsets_to_transaction");
        return false;
      }
    }
    if (TxnResult r = client_.CommitTransaction(timeout); !r.ok()) {
      Failed(r.error(), "commit");
      return false;
    }
    open_ = false;
    partitions_.Committed(inputs_, offsets);
    return true;
  }

  const std::string& rewind_reason() const override { return rewind_why_; }

  // Aborts the open transaction, or replaces a producer that cannot abort (the new one fences
  // it for good).
  bool Reset() override {
    if (!producer_fatal_ && open_) {
      if (TxnResult r = client_.AbortTransaction(std::chrono::seconds(60)); !r.ok()) {
        log::Warn("abort failed; starting a new producer", {{"error", r.error().message}});
        producer_fatal_ = true;
      }
    }
    if (producer_fatal_) {
      if (Result<void> r = client_.ReplaceProducer(); !r.ok()) {
        log::Error("cannot create producer", {{"error", r.error().message}});
        return false;
      }
    }
    open_ = false;
    producer_fatal_ = false;
    failed_ = false;
    rewind_why_.clear();
    return true;
  }

 private:
  bool Begin() {
    if (open_) return true;
    if (TxnResult r = client_.BeginTransaction(); !r.ok()) {
      Failed(r.error(), "begin");
      return false;
    }
    open_ = true;
    return true;
  }

  // A failed transaction call is retried when the error says so, else recovered from by a
  // rewind in the main loop.
  void Failed(const TxnError& error, const char* during) {
    log::Warn("transaction failed",
              {{"during", during}, {"error", error.message}, {"fatal", error.fatal}});
    count_error_();
    if (error.retriable && !error.fatal && open_) return;  // the next commit tries again
    producer_fatal_ = producer_fatal_ || error.fatal;
    rewind_why_ = std::string("transaction ") + during + " failed";
  }

  KafkaClient& client_;
  PartitionTable& partitions_;
  const InputsConfig inputs_;  // a copy: a reload replaces the config, never its inputs
  ErrorCounter count_error_;
  bool open_ = false;
  bool failed_ = false;  // a message of the open transaction was not delivered
  bool producer_fatal_ = false;
  std::string rewind_why_;
};

}  // namespace

std::unique_ptr<Committer> NewAtLeastOnceCommitter(KafkaClient& client, PartitionTable& partitions,
                                                   const InputsConfig& inputs) {
  return std::make_unique<AtLeastOnceCommitter>(client, partitions, inputs);
}

std::unique_ptr<Committer> NewTransactionalCommitter(KafkaClient& client,
                                                     PartitionTable& partitions,
                                                     const InputsConfig& inputs,
                                                     ErrorCounter count_error) {
  return std::make_unique<TransactionalCommitter>(client, partitions, inputs,
                                                  std::move(count_error));
}

}  // namespace triaged
