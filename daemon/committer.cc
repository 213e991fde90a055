#include "daemon/committer.h"

#include "daemon/log.h"

namespace triaged {
namespace {

class AtLeastOnceCommitter final : public Committer {
 public:
  AtLeastOnceCommitter(KafkaClients& clients, PartitionTable& partitions,
                       const InputsConfig& inputs)
      : clients_(clients), partitions_(partitions), inputs_(inputs) {}

  bool BeforeProduce() override { return true; }
  // The hold stays: offsets are not committed past an item that was not delivered.
  void ProduceFailed() override {}

  void Commit(bool sync, const std::set<int32_t>* only) override {
    if (sync) rd_kafka_flush(clients_.producer.get(), 10000);
    PartitionList list = partitions_.Committable(inputs_, only, /*changed_only=*/false);
    if (list->cnt == 0) return;
    const rd_kafka_resp_err_t e = rd_kafka_commit(clients_.consumer.get(), list.get(), sync ? 0 : 1);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR && e != RD_KAFKA_RESP_ERR__NO_OFFSET) {
      log::Warn("commit failed", {{"error", rd_kafka_err2str(e)}});
    }
  }

  const std::string& rewind_reason() const override { return none_; }
  bool Reset() override { return true; }
  bool transactional() const override { return false; }

 private:
  KafkaClients& clients_;
  PartitionTable& partitions_;
  const InputsConfig& inputs_;
  const std::string none_;
};

class TransactionalCommitter final : public Committer {
 public:
  TransactionalCommitter(KafkaClients& clients, PartitionTable& partitions,
                         const InputsConfig& inputs, ErrorCounter count_error,
                         ProducerFactory new_producer)
      : clients_(clients),
        partitions_(partitions),
        inputs_(inputs),
        count_error_(std::move(count_error)),
        new_producer_(std::move(new_producer)) {}

  bool BeforeProduce() override { return rewind_why_.empty() && Begin(); }
  void ProduceFailed() override { failed_ = true; }

  // Routed items, dead letters and decision records of the open transaction, with the input
  // offsets they make safe, committed atomically. Nothing to commit, no transaction. Always
  // waits: a transaction is committed or it is not.
  void Commit(bool /*sync*/, const std::set<int32_t>* /*only*/) override {
    if (!rewind_why_.empty()) return;
    rd_kafka_t* producer = clients_.producer.get();
    if (open_) {
      // Every message of the transaction acknowledged, so the holds it pinned are released.
      rd_kafka_flush(producer, 60000);
      if (failed_ || rd_kafka_outq_len(producer) > 0) {
        rewind_why_ = "a message of the transaction was not delivered";
        return;
      }
    }
    PartitionList offsets = partitions_.Committable(inputs_, nullptr, /*changed_only=*/true);
    if (!open_ && offsets->cnt == 0) return;
    if (!Begin()) return;
    if (offsets->cnt > 0) {
      GroupMetadata group(rd_kafka_consumer_group_metadata(clients_.consumer.get()));
      if (KafkaError e{rd_kafka_send_offsets_to_transaction(producer, offsets.get(), group.get(),
                                                            60000)}) {
        Failed(std::move(e), "send_offsets_to_transaction");
        return;
      }
    }
    if (KafkaError e{rd_kafka_commit_transaction(producer, 60000)}) {
      Failed(std::move(e), "commit");
      return;
    }
    open_ = false;
    partitions_.Committed(inputs_, *offsets);
  }

  const std::string& rewind_reason() const override { return rewind_why_; }

  // Aborts the open transaction, or replaces a producer that cannot abort (the new one fences
  // it for good).
  bool Reset() override {
    if (!producer_fatal_ && open_) {
      if (KafkaError e{rd_kafka_abort_transaction(clients_.producer.get(), 60000)}) {
        log::Warn("abort failed; starting a new producer",
                  {{"error", rd_kafka_error_string(e.get())}});
        producer_fatal_ = true;
      }
    }
    if (producer_fatal_) {
      rd_kafka_purge(clients_.producer.get(), RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
      rd_kafka_poll(clients_.producer.get(), 0);  // delivery reports of the purged messages
      clients_.producer.reset();
      if (!new_producer_()) return false;
    }
    open_ = false;
    producer_fatal_ = false;
    failed_ = false;
    rewind_why_.clear();
    return true;
  }

  bool transactional() const override { return true; }

 private:
  bool Begin() {
    if (open_) return true;
    if (KafkaError e{rd_kafka_begin_transaction(clients_.producer.get())}) {
      Failed(std::move(e), "begin");
      return false;
    }
    open_ = true;
    return true;
  }

  // A failed transaction call is retried when the error says so, else recovered from by a
  // rewind in the main loop.
  void Failed(KafkaError error, const char* during) {
    const bool fatal = rd_kafka_error_is_fatal(error.get());
    const bool retriable = rd_kafka_error_is_retriable(error.get());
    log::Warn("transaction failed", {{"during", during},
                                     {"error", rd_kafka_error_string(error.get())},
                                     {"fatal", fatal}});
    count_error_();
    if (retriable && !fatal && open_) return;  // the next commit tries again
    producer_fatal_ = producer_fatal_ || fatal;
    rewind_why_ = std::string("transaction ") + during + " failed";
  }

  KafkaClients& clients_;
  PartitionTable& partitions_;
  const InputsConfig& inputs_;
  ErrorCounter count_error_;
  ProducerFactory new_producer_;
  bool open_ = false;
  bool failed_ = false;  // a message of the open transaction was not delivered
  bool producer_fatal_ = false;
  std::string rewind_why_;
};

}  // namespace

std::unique_ptr<Committer> NewAtLeastOnceCommitter(KafkaClients& clients,
                                                   PartitionTable& partitions,
                                                   const InputsConfig& inputs) {
  return std::make_unique<AtLeastOnceCommitter>(clients, partitions, inputs);
}

std::unique_ptr<Committer> NewTransactionalCommitter(KafkaClients& clients,
                                                     PartitionTable& partitions,
                                                     const InputsConfig& inputs,
                                                     ErrorCounter count_error,
                                                     ProducerFactory new_producer) {
  return std::make_unique<TransactionalCommitter>(clients, partitions, inputs,
                                                  std::move(count_error), std::move(new_producer));
}

}  // namespace triaged
